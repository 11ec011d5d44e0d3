"""The call flow: the 124 menus as data and one pure state machine that walks them.

Transports (Twilio, Asterisk, the terminal phone) turn what the network says into ``events``,
call ``advance`` and turn the returned ``actions`` into TwiML, AGI commands or printed text.
"""

from ivr.flow.engine import Transition, advance
from ivr.flow.state import CallState

__all__ = ["CallState", "Transition", "advance"]
