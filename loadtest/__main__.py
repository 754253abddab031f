"""CLI: `python -m loadtest run --profile default|100k|dist [overrides]`, `python -m loadtest boards`,
`python -m loadtest recheck <run dir>` (the count check again, for a past run)."""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from loadtest.boards import BoardsEnv, render
from loadtest.guard import NotLoopback, require_loopback
from loadtest.runner import (
    EXIT_CHECK_FAILED,
    EXIT_NOT_RUN,
    EXIT_PASSED,
    REPO_ROOT,
    RunError,
    print_result,
    recheck,
    run,
)
from loadtest.seed import SeedError
from loadtest.settings import NATIVE_HOST, PROFILES, LoadtestEnv, Profile, parse_duration, profile_from_env

OVERRIDES = {
    # flag: (Profile field, type)
    "host": ("host", str),
    "users": ("users", int),
    "spawn_rate": ("spawn_rate", float),
    "read_users": ("read_users", int),
    "write_users": ("write_users", int),
    "read_rps": ("read_rps_per_user", float),
    "write_rps": ("write_rps_per_user", float),
    "seed_codes": ("seed_codes", int),
    "drain_timeout": ("drain_timeout", float),
    "processes": ("processes", int),
    "workers": ("workers", int),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_cmd = sub.add_parser("run", help="one bounded load-test run with the click-count check")
    run_cmd.add_argument("--profile", choices=PROFILES, default="default")
    run_cmd.add_argument("--run-time", help="duration, e.g. 90s, 10m (overrides the profile's)")
    for flag, (_, kind) in OVERRIDES.items():
        run_cmd.add_argument("--" + flag.replace("_", "-"), type=kind)
    run_cmd.add_argument("--api-key-file", type=Path, default=REPO_ROOT / ".local/api-key")
    run_cmd.add_argument("--out-dir", type=Path, default=REPO_ROOT / ".local/loadtest")
    recheck_cmd = sub.add_parser("recheck", help="run the click-count check again for a past run")
    recheck_cmd.add_argument("run_dir", type=Path, help="the run's directory, e.g. .local/loadtest/<run-id>")
    recheck_cmd.add_argument("--host", default=NATIVE_HOST)
    recheck_cmd.add_argument("--drain-timeout", type=float, default=60.0)
    recheck_cmd.add_argument("--api-key-file", type=Path, default=REPO_ROOT / ".local/api-key")
    boards_cmd = sub.add_parser("boards", help="print where the dashboards and metrics are")
    boards_cmd.add_argument("--no-probe", action="store_true", help="do not check which URLs answer")
    return parser


def _profile(args: argparse.Namespace, env: LoadtestEnv) -> Profile:
    profile = profile_from_env(args.profile, env)
    changes = {field: getattr(args, flag) for flag, (field, _) in OVERRIDES.items() if getattr(args, flag) is not None}
    if args.run_time:
        changes["run_time"] = parse_duration(args.run_time)
    return replace(profile, **changes).validate()


def _api_key(env: LoadtestEnv, path: Path) -> str:
    if env.loadtest_api_key:
        return env.loadtest_api_key
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise RunError(f"no API key: set LOADTEST_API_KEY or create {path} (`just up` does)") from exc


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "boards":
        print(render(BoardsEnv(), probe=not args.no_probe))
        return 0
    if args.command == "recheck":
        try:
            check = recheck(
                args.run_dir,
                host=args.host,
                api_key=_api_key(LoadtestEnv(), args.api_key_file),
                timeout=args.drain_timeout,
            )
        except (NotLoopback, RunError, ValueError) as exc:
            print(f"[loadtest] not run: {exc}", file=sys.stderr)
            return EXIT_NOT_RUN
        print(f"click check {'PASSED' if check.passed else 'FAILED'}: {check.reason}")
        return EXIT_PASSED if check.passed else EXIT_CHECK_FAILED
    env = LoadtestEnv()
    try:
        profile = _profile(args, env)
        require_loopback(profile.host)  # before anything else, the API key included
        result = run(profile, api_key=_api_key(env, args.api_key_file), out_dir=args.out_dir)
    except (NotLoopback, SeedError, RunError, ValueError) as exc:
        print(f"[loadtest] not run: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN
    print_result(result)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
