"""Fall monitoring with alerts on /recognizer/alerts: Azure Kinect body tracking or a camera.

    ros2 launch pgfa_ros fall_monitor.launch.py sensor:=kinect      # recommended: Azure Kinect driver running
    ros2 launch pgfa_ros fall_monitor.launch.py [config:=...] [video_publisher:=false]   # camera -> MediaPipe

The label set, alert classes, thresholds and consecutive-window count are in
``config/fall_monitor_kinect.yaml`` (sensor:=kinect) and ``config/fall_monitor.yaml`` (camera),
chosen from ``benchmarks/falls`` (see docs/FALLS.md). Without ``ros2 launch``:
``pgfa-launch config/fall_monitor_kinect.yaml`` / ``pgfa-launch config/fall_monitor.yaml``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("pgfa_ros")
    sensor = LaunchConfiguration("sensor")
    config = LaunchConfiguration("config")
    autostart = ParameterValue(LaunchConfiguration("autostart"), value_type=bool)
    camera = PythonExpression(["'", sensor, "' == 'camera'"])
    camera_nodes = IfCondition(PythonExpression(["'", sensor, "' == 'camera' and '",
                                                 LaunchConfiguration("video_publisher"), "'.lower() == 'true'"]))
    default_config = PythonExpression([
        "'", os.path.join(share, "config", "fall_monitor_kinect.yaml"), "' if '", sensor, "' == 'kinect' else '",
        os.path.join(share, "config", "fall_monitor.yaml"), "'"])
    return LaunchDescription([
        DeclareLaunchArgument("sensor", default_value="camera", choices=["camera", "kinect"],
                              description="kinect: Azure Kinect /body_tracking_data; camera: video_publisher + MediaPipe"),
        DeclareLaunchArgument("config", default_value=default_config,
                              description="ROS 2 parameters file (default: the sensor's fall monitor config)"),
        DeclareLaunchArgument("autostart", default_value="true"),
        DeclareLaunchArgument("video_publisher", default_value="true",
                              description="camera: start the OpenCV camera / video file publisher"),
        Node(package="pgfa_ros", executable="video_publisher", name="video_publisher", output="screen",
             parameters=[config], condition=camera_nodes),
        Node(package="pgfa_ros", executable="pose_estimator", name="pose_estimator", output="screen",
             parameters=[config], condition=IfCondition(camera)),
        Node(package="pgfa_ros", executable="recognizer", name="recognizer", output="screen",
             emulate_tty=True, parameters=[config, {"autostart": autostart}]),
    ])
