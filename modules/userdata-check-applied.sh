# ExecStartPre= of ecs-agent.service (modules/userdata.nix): fails while the marker $1,
# written by nixecs-userdata.service after each successful apply, is missing on this boot.
if [ ! -e "$1" ]; then
  echo "the EC2 userdata has not been applied on this boot (nixecs-userdata.service did not succeed): not starting the ECS agent with the baked configuration; see journalctl -u nixecs-userdata" >&2
  exit 1
fi
