"""Recognizer alone, on a live skeleton topic (default: Azure Kinect body tracking).

    ros2 launch pgfa_ros recognizer.launch.py [config:=/path/params.yaml] [autostart:=true]

Start the skeleton source separately, e.g.
``ros2 launch azure_kinect_ros_driver driver.launch.py body_tracking_enabled:=true``.
Without ``ros2 launch``, the same file runs in one process: ``pgfa-launch config/azure_kinect_live.yaml``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("pgfa_ros")
    config = LaunchConfiguration("config")
    autostart = LaunchConfiguration("autostart")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "azure_kinect_live.yaml"),
                              description="ROS 2 parameters file with a 'recognizer' entry"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure + activate the lifecycle node at start-up"),
        DeclareLaunchArgument("log_level", default_value="info"),
        Node(
            package="pgfa_ros",
            executable="recognizer",
            name="recognizer",
            output="screen",
            emulate_tty=True,
            parameters=[config, {"autostart": ParameterValue(autostart, value_type=bool)}],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        ),
    ])
