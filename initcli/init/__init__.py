"""What an init is: schemes, policies, torch's defaults, auto, user code, recorded calls."""
