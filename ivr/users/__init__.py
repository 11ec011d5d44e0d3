"""The people who work the hotline: agents, supervisors, national staff and admins.

``models`` is the table, ``store`` its only writer, ``passwords`` how passwords and PINs are kept
(argon2id hashes, never the secret itself).
"""
