"""The detectors' version, stamped on every decision (bump when any rule's behaviour changes)."""

DETECTOR_VERSION = "detectors-1.0.0"
