"""The mock's state and time: records, the store, the clock, lifecycles, events, faults,
the journal and the rate limit. Nothing here knows HTTP."""
