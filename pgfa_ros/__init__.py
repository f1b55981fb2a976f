"""pgfa_ros."""
