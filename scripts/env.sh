# Source me: environment for running pgfa_ros from the repo's .venv without a ROS install.
# ament_index needs AMENT_PREFIX_PATH; the venv prefix holds the ROS wheels' share/ folders.
_pgfa_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$_pgfa_root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset _pgfa_root
