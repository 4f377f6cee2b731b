"""A progress bar for management commands: redrawn in place on a terminal, one line per update
in a log (CI, cron), always on stderr so stdout keeps only the summary."""

import sys

WIDTH = 30


class ProgressBar:
    def __init__(self, command):
        # Django wraps stderr in an OutputWrapper; write to the real stream underneath.
        self.stream = getattr(command.stderr, "_out", sys.stderr)

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if total:
            filled = int(WIDTH * min(done, total) / total)
            text = f"  {stage:<10} [{'#' * filled}{'-' * (WIDTH - filled)}] {done}/{total}"
        else:
            text = f"  {stage:<10} {done} read..."
        self.stream.write(("\r" + text.ljust(70)) if self.stream.isatty() else text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.stream.isatty():
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
