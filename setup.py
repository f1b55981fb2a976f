"""ament_python / pip packaging for pgfa_ros (installs pgfa_models, pgfa_ros, training)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "pgfa_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["pgfa_models*", "pgfa_ros*", "training*"]),
    package_data={"training": ["descriptions/*.yaml"], "pgfa_ros": ["assets/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/training", glob("config/training/*.yaml")),
        (f"share/{PACKAGE}/config/labels", glob("config/labels/*.yaml")),
    ],
    python_requires=">=3.10",
    zip_safe=False,
    maintainer="pgfa_ros developers",
    maintainer_email="pgfa-ros@example.org",
    description="Zero-shot skeleton action recognition (PGFA) for ROS 2",
    license="BSD-3-Clause",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "pgfa-train = training.cli_train:main",
            "pgfa-eval = training.cli_eval:main",
            "pgfa-export = training.cli_export:main",
            "pgfa-bag = pgfa_ros.bag.cli:main",
            "pgfa-replay = pgfa_ros.replay:main",
            "pgfa-launch = pgfa_ros.launcher:main",
            "pgfa-demo = pgfa_ros.demo:main",
            "recognizer = pgfa_ros.recognizer_node:main",
            "pose_estimator = pgfa_ros.pose_node:main",
            "video_publisher = pgfa_ros.video_publisher:main",
        ],
    },
)
