"""Asterisk configuration, installed as the package ``ivr.dialplans`` (see setup.py).

Operators copy the ``.conf`` files into ``/etc/asterisk/ivr124/``; the test PBX reads them from
the installed package (``ivr.DIALPLANS_DIR``).
"""
