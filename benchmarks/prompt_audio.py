"""The prompts as a caller hears them, per installed voice: build time, spoken lengths, levels.

For each voice (``mbrola-ir1`` when installed, ``espeak-fa``), the real catalogue is rendered
from scratch into a temporary folder, then measured on the files:

1. the time of a full build (all prompts, on a thread per core);
2. the spoken length of 1587, 124 and a 10-digit tracking number (the files played in a row, as
   the IVR plays them) and how many files each takes;
3. the five longest prompts;
4. the spread of speech levels (RMS with pauses cut out) and the highest peak, with sox.

    .venv/bin/python benchmarks/prompt_audio.py [--voice mbrola-ir1|espeak-fa] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from ivr import audio, speech
from ivr.prompts import audio_path, build, load_catalog, read_wav_info
from ivr.voices import VOICE_NAMES, VOICES, is_installed

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TRACKING = "1000000202"


def measure(voice_name: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ivr-prompt-audio-") as tmp:
        root = Path(tmp) / "prompts"
        root.mkdir()
        for source in (PROJECT_ROOT / "prompts").glob("*.toml"):
            shutil.copy(source, root / source.name)
        started = time.perf_counter()
        report = build(root, voice=VOICES[voice_name])
        build_seconds = time.perf_counter() - started

        def seconds(fragments: list[str]) -> float:
            return sum(read_wav_info(audio_path(root, f)).duration for f in fragments)

        sequences = {
            "1587": speech.number_fragments(1587),
            "124": speech.number_fragments(124),
            f"tracking {TRACKING}": speech.digits_fragments(
                TRACKING, speech.tracking_groups(TRACKING)
            ),
        }
        catalog = load_catalog(root)
        lengths = {pid: read_wav_info(audio_path(root, pid)).duration for pid in catalog}
        levels = {
            pid: audio.levels(audio_path(root, pid))
            for pid, prompt in catalog.items()
            if not prompt.is_silence
        }
        longest = sorted(lengths, key=lengths.__getitem__, reverse=True)[:5]
        return {
            "voice": voice_name,
            "prompts": len(report.rendered),
            "build_s": round(build_seconds, 2),
            "spoken": {
                name: {"seconds": round(seconds(frags), 2), "files": len(frags)}
                for name, frags in sequences.items()
            },
            "longest": {pid: round(lengths[pid], 2) for pid in longest},
            "speech_rms_db": [
                round(min(lv.speech_rms_db for lv in levels.values()), 2),
                round(max(lv.speech_rms_db for lv in levels.values()), 2),
            ],
            "peak_db_max": round(max(lv.peak_db for lv in levels.values()), 2),
            "total_s": round(sum(lengths.values()), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", choices=VOICE_NAMES, action="append")
    parser.add_argument("--json", action="store_true", help="one JSON object per voice")
    args = parser.parse_args()
    names = args.voice or [name for name in VOICE_NAMES if is_installed(VOICES[name])]
    for name in names:
        result = measure(name)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
            continue
        print(f"{name}: {result['prompts']} prompts built in {result['build_s']} s")
        for seq, figures in result["spoken"].items():
            print(f"  {seq}: {figures['seconds']} s in {figures['files']} files")
        print("  longest: " + ", ".join(f"{p} {s} s" for p, s in result["longest"].items()))
        low, high = result["speech_rms_db"]
        print(f"  speech RMS {low} … {high} dBFS, highest peak {result['peak_db_max']} dBFS")
        print(f"  all prompts together: {result['total_s']} s")


if __name__ == "__main__":
    main()
