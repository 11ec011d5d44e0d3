"""Persian speech printed as words, so anyone can check the pronunciation rules."""

from __future__ import annotations

from datetime import date

import typer

app = typer.Typer(no_args_is_help=True, help="Print Persian speech as words, to check it.")


@app.command("number")
def speak_number(n: int) -> None:
    """A number in spoken Persian."""
    from ivr.speech import fragment_words, load_fragment_texts, number_fragments

    typer.echo(fragment_words(number_fragments(n), load_fragment_texts()))


@app.command("digits")
def speak_digits(digits: str) -> None:
    """A phone or tracking number read digit by digit."""
    from ivr.speech import (
        digits_fragments,
        fragment_words,
        load_fragment_texts,
        normalize_digits,
        phone_groups,
    )

    plain = normalize_digits(digits)
    typer.echo(fragment_words(digits_fragments(plain, phone_groups(plain)), load_fragment_texts()))


@app.command("date")
def speak_date(day: str) -> None:
    """A date (YYYY-MM-DD, Gregorian) spoken as its Jalali date."""
    from ivr.speech import date_fragments, fragment_words, load_fragment_texts, normalize_digits

    parsed = date.fromisoformat(normalize_digits(day))
    typer.echo(fragment_words(date_fragments(parsed), load_fragment_texts()))
