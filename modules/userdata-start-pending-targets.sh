# Queues the start of every target that has a waiting start job, so that units a boot-time
# `switch-to-configuration` added to such a target start on this boot. Run by
# nixecs-userdata.service after a successful apply (ExecStartPost=); modules/userdata.nix
# says why, tools/tests/test_systemd_jobs.py runs this very file under a real systemd.
# Needs systemctl and awk on PATH. Never fails the unit: at worst the units start at the
# next boot, and it says so.
set -u
targets=$(systemctl list-jobs --no-legend --no-pager |
  awk '$2 ~ /[.]target$/ && $3 == "start" { print $2 }')
if [ -n "$targets" ]; then
  # shellcheck disable=SC2086 # one word per unit: systemd escapes whitespace in unit names
  echo "queuing the start of" $targets "for what the new configuration adds to them"
  # --no-block: these targets are ordered after the calling unit; waiting for them here
  # would deadlock. --job-mode=fail: never cancel a conflicting job (a shutdown).
  # shellcheck disable=SC2086
  systemctl --no-block --job-mode=fail start $targets ||
    echo "warning: could not queue the start of $targets; units added by the userdata start at the next boot" >&2
fi
exit 0
