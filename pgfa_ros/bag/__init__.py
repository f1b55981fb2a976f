"""rosbag2 tools for pgfa_ros: convert datasets to bags, record, play, and evaluate bags.

Bags are standard rosbag2 folders (``metadata.yaml`` + MCAP or sqlite3 storage) written and read
with the pure-Python ``rosbags`` library, so ``convert`` and ``eval`` need no ROS installation;
``record`` and ``play`` talk to a live ROS 2 graph through rclpy. The topic convention is in
:mod:`pgfa_ros.bag.convention` and ``docs/BAGS.md``.
"""
from .convention import BagError  # noqa: F401
