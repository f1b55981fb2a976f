"""Camera -> MediaPipe Pose (pose_estimator) -> recognizer.

    ros2 launch pgfa_ros camera_pipeline.launch.py [config:=...] [video_publisher:=false]

``video_publisher`` reads an OpenCV camera or a video file (its ``video_path`` parameter); set
``video_publisher:=false`` when a ROS camera driver already publishes images, and point
``pose_estimator.image_topic`` at it in the config. Without ``ros2 launch``:
``pgfa-launch config/camera_mediapipe.yaml`` starts the same nodes in one process.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def pipeline(config, autostart, use_video_publisher):
    """The three nodes of the camera pipeline, all reading ``config``."""
    return [
        Node(package="pgfa_ros", executable="video_publisher", name="video_publisher", output="screen",
             parameters=[config], condition=IfCondition(use_video_publisher)),
        Node(package="pgfa_ros", executable="pose_estimator", name="pose_estimator", output="screen",
             parameters=[config]),
        Node(package="pgfa_ros", executable="recognizer", name="recognizer", output="screen",
             emulate_tty=True,
             parameters=[config, {"autostart": ParameterValue(autostart, value_type=bool)}]),
    ]


def generate_launch_description():
    share = get_package_share_directory("pgfa_ros")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "camera_mediapipe.yaml"),
                              description="ROS 2 parameters file (video_publisher, pose_estimator, recognizer)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure + activate the lifecycle recognizer at start-up"),
        DeclareLaunchArgument("video_publisher", default_value="true",
                              description="start the OpenCV camera / video file publisher"),
        *pipeline(LaunchConfiguration("config"), LaunchConfiguration("autostart"),
                  LaunchConfiguration("video_publisher")),
    ])
