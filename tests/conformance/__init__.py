"""The conformance suite: scenarios run on real ConfD, on the emulator, and against recordings
(see docs/conformance.md)."""
