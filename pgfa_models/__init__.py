"""Pure PyTorch/NumPy core of pgfa_ros: layouts, preprocessing, encoders, loss, text,
alignment, checkpoints and inference backends. Never imports rclpy."""

__version__ = "0.1.0"
