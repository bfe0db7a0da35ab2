"""The shared kernel: flags, errors, logging, throttles, pagination, permissions, vocabulary.

Imported by every app and by the composition root (reims/); it imports no app of ours.
"""
