"""What an init is: schemes, policies, torch's defaults, auto, the user's own code, recorded calls."""
