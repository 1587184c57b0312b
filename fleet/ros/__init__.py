"""ROS 2 robots and robot cells through rosbridge (roslibpy): configuration, message
conversion, the per-robot link and the gateway that runs them in the controller's loop."""
