"""Fall monitoring: camera -> MediaPipe Pose -> recognizer with alerts on /recognizer/alerts.

    ros2 launch pgfa_ros fall_monitor.launch.py [config:=...] [video_publisher:=false]

The label set, alert classes, threshold and consecutive-window count are in
``config/fall_monitor.yaml``. Without ``ros2 launch``: ``pgfa-launch config/fall_monitor.yaml``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("pgfa_ros")
    config = LaunchConfiguration("config")
    autostart = ParameterValue(LaunchConfiguration("autostart"), value_type=bool)
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "fall_monitor.yaml"),
                              description="ROS 2 parameters file (video_publisher, pose_estimator, recognizer)"),
        DeclareLaunchArgument("autostart", default_value="true"),
        DeclareLaunchArgument("video_publisher", default_value="true",
                              description="start the OpenCV camera / video file publisher"),
        Node(package="pgfa_ros", executable="video_publisher", name="video_publisher", output="screen",
             parameters=[config], condition=IfCondition(LaunchConfiguration("video_publisher"))),
        Node(package="pgfa_ros", executable="pose_estimator", name="pose_estimator", output="screen",
             parameters=[config]),
        Node(package="pgfa_ros", executable="recognizer", name="recognizer", output="screen",
             emulate_tty=True, parameters=[config, {"autostart": autostart}]),
    ])
