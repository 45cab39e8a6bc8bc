"""Open a report in headless Chromium, take screenshots, and fail on what a reader would see broken.

    python benchmarks/check_report.py benchmarks/results/report.html --screenshots /tmp/shots

Checks at 1,280 px (desktop) and 500 px (narrow: headless Chromium's narrowest window) wide: the page
does not scroll sideways, no table, figure or image sticks out of the page unless it sits in its own
scrolling box (``class="scroll"``), at desktop width no such box outside a folded ``<details>`` has to
scroll, every image loaded, and no console or script error. Writes
``report-1280.png`` / ``report-500.png`` (full page) and exits 1 listing the problems, if any. Needs
Chromium (Debian package ``chromium``); nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Desktop, and the narrowest window headless Chromium lays out (500 px; phones are 360-430 px wide, so
# a page that holds at 500 px with tables scrolling in their own boxes holds there too).
WIDTHS = (1280, 500)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--mute-audio",
)

# Injected first into <head>: records errors from the start, measures the layout after load, and
# leaves the verdict in the DOM for --dump-dom to print.
PROBE = """<script>
(function () {
  var problems = [];
  var error = console.error;
  console.error = function () {
    problems.push("console error: " + Array.prototype.join.call(arguments, " ").slice(0, 200));
    return error.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      var what = String(t.src || t.href).slice(0, 80);
      problems.push("failed to load " + t.tagName.toLowerCase() + ": " + what);
    } else {
      problems.push("script error: " + e.message);
    }
  }, true);
  window.addEventListener("load", function () {
    var width = document.documentElement.clientWidth;
    var page = document.documentElement.scrollWidth;
    if (page > width + 1) {
      problems.push("the page scrolls sideways: " + page + " px wide in a " + width + " px window");
    }
    document.querySelectorAll("img").forEach(function (img, i) {
      if (!img.complete || img.naturalWidth === 0) problems.push("image not shown: " + (img.alt || "#" + i));
    });
    document.querySelectorAll("table, figure, img, pre, svg, canvas").forEach(function (el, i) {
      var box = el.closest(".scroll") || el;
      var r = box.getBoundingClientRect();
      if (r.right > width + 1 || r.left < -1) {
        var name = el.tagName.toLowerCase() + " " + (el.id || el.alt || "#" + i);
        problems.push(name + " sticks out of the page (" + Math.round(r.left) + " to " +
          Math.round(r.right) + " px, window " + width + " px)");
      }
    });
    // On a desktop window a table a reader needs (not one folded away in <details>) fits without
    // scrolling sideways in its box: a clipped column is a column nobody reads.
    if (width >= 1000) {
      document.querySelectorAll(".scroll").forEach(function (box, i) {
        if (box.closest("details") === null && box.scrollWidth > box.clientWidth + 1) {
          var inner = box.querySelector("[id]");
          problems.push((inner ? inner.id : "box #" + i) + " scrolls sideways in its box (" +
            box.scrollWidth + " px of content in " + box.clientWidth + " px)");
        }
      });
    }
    var out = document.createElement("pre");
    out.id = "__report_check__";
    out.style.display = "none";
    out.textContent = JSON.stringify({problems: problems, height: document.documentElement.scrollHeight});
    document.body.appendChild(out);
  });
})();
</script>"""


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _run(chromium: str, profile: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def check_report(
    html_path: str | Path,
    screenshot_dir: str | Path | None = None,
    *,
    widths: tuple[int, ...] = WIDTHS,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> CheckResult:
    """Render ``html_path`` at each width; return the problems found and the screenshots written."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium not found; install the Debian package `chromium`")
    html_path = Path(html_path)
    text = html_path.read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    probed = text[: head.end()] + PROBE + text[head.end() :] if head else PROBE + text
    result = CheckResult()
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        tmp_dir = Path(tmp)
        page = tmp_dir / html_path.name
        page.write_text(probed, encoding="utf-8")
        for width in widths:
            # A fresh profile per run: nothing cached, no state shared with a user's browser.
            dom = _run(
                chromium,
                tmp_dir / f"profile-dom-{width}",
                [f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                timeout,
            )
            match = re.search(r'<pre id="__report_check__"[^>]*>(.*?)</pre>', dom.stdout, flags=re.DOTALL)
            if dom.returncode != 0 or match is None:
                stderr = dom.stderr.strip().splitlines()[-1:] or ["no output"]
                result.problems.append(f"{width} px: the page did not finish loading ({stderr[0][:200]})")
                continue
            verdict = json.loads(_unescape(match.group(1)))
            result.problems += [f"{width} px: {p}" for p in verdict["problems"]]
            if screenshot_dir is not None:
                out = Path(screenshot_dir) / f"{html_path.stem}-{width}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                height = max(600, min(int(verdict["height"]), 16000))
                shot = _run(
                    chromium,
                    tmp_dir / f"profile-shot-{width}",
                    [
                        f"--window-size={width},{height}",
                        "--virtual-time-budget=10000",
                        f"--screenshot={out}",
                        page.as_uri(),
                    ],
                    timeout,
                )
                if shot.returncode != 0 or not out.exists():
                    result.problems.append(f"{width} px: no screenshot ({shot.stderr.strip()[-200:]})")
                else:
                    result.screenshots.append(out)
    return result


def _unescape(text: str) -> str:
    return text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report to check (report.html)")
    parser.add_argument("--screenshots", type=Path, default=None, help="write full-page PNGs here")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"error: {args.html} does not exist; write it with `taskscout bench`", file=sys.stderr)
        return 2
    try:
        result = check_report(args.html, args.screenshots)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for shot in result.screenshots:
        print(f"screenshot: {shot}")
    for problem in result.problems:
        print(f"problem: {problem}")
    print("ok" if result.ok else f"{len(result.problems)} problem(s)")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
