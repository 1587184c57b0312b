"""Simulated ROS 2 robots and robot cells as real rclpy nodes, for the integration test and for
trying the rosbridge adapter without hardware.

Runs with the ROS 2 interpreter (the virtual environment `make ros-env` builds in var/ros), not
the controller's: it imports nothing of this project, only rclpy and standard messages.

    python sim/ros_nodes.py robot --ns amr1 --x 3 --y 11 [--speed 1.0]
    python sim/ros_nodes.py cell --ns cell_a [--transfer-s 1.0] [--fail-first 0]
    python sim/ros_nodes.py robots --count 50 [--ns-prefix amr]   (for bench/ros_bridge.py)

robot: a Nav2-like mobile base seen from outside. It takes geometry_msgs/PoseStamped goals on
`goal_pose`, drives straight to the newest one at `--speed`, and publishes nav_msgs/Odometry on
`odom` and sensor_msgs/BatteryState on `battery_state` (draining while it drives) at 20 Hz.
cell: std_srvs/Trigger services `load` and `unload`; each accepted request gets a transfer id
(the answer's message) and `<id> running`, then `<id> done` (or `failed: ...` for the first
`--fail-first` requests) on the std_msgs/String topic `status`.
robots: `--count` robots in one process (namespaces amr0, amr1, ...), each also echoing every
goal at once on `goal_echo` (geometry_msgs/PoseStamped), so a benchmark can time the round trip.
"""

from __future__ import annotations

import argparse
import math

import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String
from std_srvs.srv import Trigger

RATE_HZ = 20.0


class SimRobot(Node):  # type: ignore[misc]  # rclpy lives in the ROS 2 environment
    def __init__(self, ns: str, x: float, y: float, speed: float, echo: bool = False) -> None:
        super().__init__("sim_robot", namespace=ns)
        self.echo = self.create_publisher(PoseStamped, "goal_echo", 10) if echo else None
        self.x, self.y, self.yaw, self.speed = x, y, 0.0, speed
        self.goal: tuple[float, float, float] | None = None
        self.battery = 0.9
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, 10)
        self.odom = self.create_publisher(Odometry, "odom", 10)
        self.battery_pub = self.create_publisher(BatteryState, "battery_state", 10)
        self.create_timer(1.0 / RATE_HZ, self._step)

    def _on_goal(self, msg: PoseStamped) -> None:
        if self.echo is not None:
            self.echo.publish(msg)
        q = msg.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        self.goal = (msg.pose.position.x, msg.pose.position.y, yaw)

    def _step(self) -> None:
        v = 0.0
        if self.goal is not None:
            gx, gy, gyaw = self.goal
            d = math.hypot(gx - self.x, gy - self.y)
            step = self.speed / RATE_HZ
            if d <= step:
                self.x, self.y, self.yaw, self.goal = gx, gy, gyaw, None
            else:
                self.yaw = math.atan2(gy - self.y, gx - self.x)
                self.x += step * math.cos(self.yaw)
                self.y += step * math.sin(self.yaw)
                v = self.speed
                self.battery = max(0.0, self.battery - 1e-5)
        odom = Odometry()
        odom.header.stamp = self.get_clock().now().to_msg()
        odom.header.frame_id = "map"
        odom.pose.pose.position.x, odom.pose.pose.position.y = self.x, self.y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(self.yaw / 2), math.cos(self.yaw / 2)
        odom.twist.twist.linear.x = v
        self.odom.publish(odom)
        battery = BatteryState()
        battery.percentage = self.battery
        self.battery_pub.publish(battery)


class SimCell(Node):  # type: ignore[misc]
    def __init__(self, ns: str, transfer_s: float, fail_first: int) -> None:
        super().__init__("sim_cell", namespace=ns)
        self.transfer_s, self.fail_first, self.count = transfer_s, fail_first, 0
        self.status = self.create_publisher(String, "status", 10)
        self.create_service(Trigger, "load", self._on_request)
        self.create_service(Trigger, "unload", self._on_request)

    def _on_request(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.count += 1
        transfer = f"T-{self.count}"
        outcome = "failed: simulated gripper jam" if self.count <= self.fail_first else "done"
        self._say(f"{transfer} running")
        timer = None

        def finish() -> None:
            self._say(f"{transfer} {outcome}")
            if timer is not None:
                timer.cancel()

        timer = self.create_timer(self.transfer_s, finish)
        response.success, response.message = True, transfer
        return response

    def _say(self, text: str) -> None:
        msg = String()
        msg.data = text
        self.status.publish(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    robot = sub.add_parser("robot")
    robot.add_argument("--ns", required=True)
    robot.add_argument("--x", type=float, required=True)
    robot.add_argument("--y", type=float, required=True)
    robot.add_argument("--speed", type=float, default=1.0)
    cell = sub.add_parser("cell")
    cell.add_argument("--ns", required=True)
    cell.add_argument("--transfer-s", type=float, default=1.0)
    cell.add_argument("--fail-first", type=int, default=0)
    many = sub.add_parser("robots")
    many.add_argument("--count", type=int, required=True)
    many.add_argument("--ns-prefix", default="amr")
    args = parser.parse_args()
    rclpy.init()
    if args.kind == "robots":
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor()
        robots = [SimRobot(f"{args.ns_prefix}{k}", float(k), 0.0, 1.0, echo=True) for k in range(args.count)]
        for r in robots:
            executor.add_node(r)
        try:
            executor.spin()
        except KeyboardInterrupt:
            pass
        finally:
            rclpy.try_shutdown()
        return
    node: Node = (
        SimRobot(args.ns, args.x, args.y, args.speed)
        if args.kind == "robot"
        else SimCell(args.ns, args.transfer_s, args.fail_first)
    )
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
