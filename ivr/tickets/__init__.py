"""Tickets and calls: the tables, tracking numbers, the ticket service and how tickets are shown.

Import from the submodules (``ivr.tickets.service``, ``ivr.tickets.db`` …): this package imports
nothing itself, so loading the models (as Alembic's env does) never drags in the service.
"""
