"""`troupe label` driven through a real terminal: tmux (a private server, -L) runs it in a 120x40 window, keys go in
with send-keys and the screen comes back with capture-pane. Checks that the screen shows the prompt, the responses
(UTF-8, long text scrolled to the selected response), the help with the guidelines, and refuses an incomplete
judgement; that the JSONL holds exactly the ranks, ratings, flags and comment typed; that a restart resumes at the
next unlabelled prompt, a skip is recorded, and two labellers give two records of one prompt; that SIGTERM and quit
restore the terminal (cooked mode, main screen); and that no TTY or a bad input file fails with a clear message.
Every wait polls the screen against a deadline."""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402

CLI = os.environ["TROUPE_CLI"]
SOCKET = f"troupe-label-test-{os.getpid()}"
SESSION = "lab"
LONG = " ".join(f"word{i}" for i in range(900))  # about 75 lines at this width
WORDS = "alpha beta gamma delta " * 12  # 3 lines at 120 columns, 6 at 60


def tmux(*args, check_rc=True):
    r = subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, timeout=30)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"tmux {args}: {r.stderr}")
    return r.stdout


def screen():
    return tmux("capture-pane", "-p", "-t", SESSION, check_rc=False)


def wait_for(pred, what, timeout=20.0):
    """Polls the screen until pred(screen) holds; a failed check (with the screen) when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        s = screen()
        if pred(s):
            return s
        if time.monotonic() > deadline:
            check(False, f"timed out waiting for {what}; the screen:\n{s}")
            return s
        time.sleep(0.05)


def wait_text(text, timeout=20.0):
    return wait_for(lambda s: text in s, repr(text), timeout)


def keys(*k):
    tmux("send-keys", "-t", SESSION, *k)


def literal(text):
    tmux("send-keys", "-t", SESSION, "-l", text)


def stop_server():
    """Kills the private tmux server and waits until its process is gone. Killing only the last session lets the server
    exit on its own, and a new-session sent while it is still exiting fails with 'server exited unexpectedly'."""
    r = subprocess.run(["tmux", "-L", SOCKET, "display-message", "-p", "#{pid}"], capture_output=True, text=True,
                       timeout=30)
    pid = int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() else None
    tmux("kill-server", check_rc=False)
    deadline = time.monotonic() + 20
    while pid is not None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tmux server {pid} did not exit within 20 s of kill-server")
        time.sleep(0.02)


def start(inp, out, labeller):
    """A fresh session running troupe label; the shell then prints the exit code and the terminal's mode."""
    stop_server()
    cmd = (f"{shlex.quote(CLI)} label --input {shlex.quote(inp)} --output {shlex.quote(out)} --labeller "
           f"{shlex.quote(labeller)}; echo EXIT=$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon "
           f"-e echo -e -echo | tr '\\n' ' '; echo MODE; sleep 3600")
    tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", SESSION, cmd)


def body_lines(s):
    """M of the scroll line '-- lines a-b of M --' (0 when absent)."""
    m = re.search(r"-- lines \d+-\d+ of (\d+)", s)
    return int(m.group(1)) if m else 0


def records(out):
    with open(out) as f:
        return [json.loads(line) for line in f if line.strip()]


def label_alice_first_two(inp, out):
    start(inp, out, "alice")
    s = wait_text("0/3 labelled by alice")
    check("Grüße, 世界: which answer is kinder?" in s, f"the prompt (UTF-8) is not shown:\n{s}")
    check(">> Response 1 of 3" in s and "Hallo! 你好" in s, f"response 1 is not shown:\n{s}")
    check("more below" in s, f"the long response does not scroll:\n{s}")
    keys("?")
    s = wait_text("GUIDELINES")
    check("Helpful" in s and "Truthful" in s and "Harmless" in s and "r then 1..K" in s, f"help screen:\n{s}")
    keys("Escape")
    wait_text(">> Response 1 of 3")
    keys("Enter")
    wait_text("cannot submit yet: response 1 has no rating")
    keys("6", "r", "1", "f")
    wait_text("Toggle a flag of response 1")
    keys("3")
    wait_text(">> Response 1 of 3   rating 6   rank 1   flags: hallucination")
    keys("Right", "4", "r", "2", "Right")
    s = wait_text(">> Response 3 of 3")
    check("Go away." in s, f"selecting response 3 does not scroll to it:\n{s}")
    keys("6", "r", "1", "f", "1", "f", "4", "c")
    wait_text("comment: _")
    literal("nice ü")
    keys("Enter")
    wait_text(">> Response 3 of 3   rating 6   rank 1   flags: fails_instruction, harmful")
    wait_text("Comment: nice ü")
    keys("Enter")
    s = wait_text("1/3 labelled by alice")
    check("Second prompt" in s, f"the second prompt is not shown after submitting:\n{s}")
    keys("7", "+", "Right", "2", "-", "Enter")
    s = wait_text("2/3 labelled by alice")
    check("Third prompt" in s, f"third prompt:\n{s}")
    keys("u")  # undo: q2's line leaves the file and q2 reopens as it was submitted
    s = wait_text("undone: the record of q2")
    check("1/3 labelled by alice" in s and ">> Response 1 of 2   rating 7   rank 1" in s
          and "   Response 2 of 2   rating 2   rank 2" in s, f"undo:\n{s}")
    check(len(records(out)) == 1, f"after undo the file holds {len(records(out))} records")
    keys("Enter")
    wait_text("2/3 labelled by alice")
    keys("5", "q")
    wait_text("quit and discard the judgement of this prompt? (y/n)")
    keys("y")
    s = wait_text("MODE")
    check("EXIT=0" in s and "2 records written this session" in s, f"quit:\n{s}")
    check("icanon echo" in s, f"the terminal is not back in cooked mode:\n{s}")


def check_alice_records(out):
    recs = records(out)
    check(len(recs) == 2, f"{len(recs)} records after alice's first session")
    if len(recs) != 2:
        return
    a, b = recs
    check(a["id"] == "q1" and a["labeller"] == "alice" and a["ranks"] == [1, 2, 1] and a["ratings"] == [6, 4, 6]
          and a["flags"] == [["hallucination"], [], ["fails_instruction", "harmful"]] and a["comment"] == "nice ü",
          f"first record: {a}")
    check(b["id"] == "q2" and b["ranks"] == [1, 2] and b["ratings"] == [7, 2] and b["flags"] == [[], []],
          f"second record: {b}")
    check(list(a.keys()) == ["id", "labeller", "prompt", "responses", "ranks", "ratings", "flags", "comment", "time",
                             "seconds"], f"keys {list(a.keys())}")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a["time"]) is not None and a["seconds"] > 0,
          f"time {a['time']}, seconds {a['seconds']}")
    check(a["prompt"] == "Grüße, 世界: which answer is kinder?" and a["responses"][1] == LONG, "prompt and responses")


def main():
    d = tempfile.mkdtemp(prefix="troupe-label-")
    inp, out = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
    with open(inp, "w") as f:
        for item in ({"id": "q1", "prompt": "Grüße, 世界: which answer is kinder?",
                      "responses": ["Hallo! 你好, nice to meet you.", LONG, "Go away."]},
                     {"id": "q2", "prompt": "Second prompt", "responses": ["yes", "no"]},
                     {"id": "q3", "prompt": "Third prompt", "responses": [WORDS, "b", "c", "d"]}):
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    try:
        label_alice_first_two(inp, out)
        check_alice_records(out)

        start(inp, out, "alice")  # resumes at q3; a narrower window rewraps
        s = wait_text("2/3 labelled by alice")
        check("Third prompt" in s and "Response 4 of 4" in s, f"restart does not resume at q3:\n{s}")
        before = body_lines(s)
        tmux("resize-window", "-t", SESSION, "-x", "60", "-y", "30")
        s = wait_for(lambda s: body_lines(s) > before, "a redraw at 60 columns with the text rewrapped")
        words = {"alpha", "beta", "gamma", "delta"}
        wrapped = [line for line in s.splitlines() if line.startswith("    ") and line.split()
                   and set(line.split()) <= words]
        check(len(wrapped) >= 5 and sum(len(line.split()) for line in wrapped) == 48,
              f"not wrapped at word boundaries:\n{s}")
        keys("S")
        wait_text("skip this prompt?")
        keys("y")
        wait_text("All 3 prompts are labelled by alice")
        keys("q")
        s = wait_text("MODE")
        check("EXIT=0" in s and "3/3 prompts done by alice" in " ".join(s.split()), f"skip of the last prompt:\n{s}")
        recs = records(out)
        check(len(recs) == 3 and recs[-1]["id"] == "q3" and recs[-1].get("skipped") is True
              and "ranks" not in recs[-1], f"skip record: {recs[-1] if recs else None}")

        start(inp, out, "alice")
        s = wait_text("MODE")
        check("already labelled by alice" in s and "EXIT=0" in s, f"nothing left for alice:\n{s}")

        start(inp, out, "bob")  # a second labeller, same file
        wait_text("0/3 labelled by bob")
        keys("5", "r", "1", "Right", "5", "r", "1", "Right", "3", "r", "2", "Enter")
        wait_text("1/3 labelled by bob")
        pane_pid = tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip()
        troupe_pid = subprocess.run(["pgrep", "-P", pane_pid], capture_output=True, text=True, timeout=10).stdout.split()
        check(len(troupe_pid) == 1, f"troupe's pid under the pane shell {pane_pid}: {troupe_pid}")
        if troupe_pid:
            os.kill(int(troupe_pid[0]), 15)
        s = wait_text("MODE")
        check("EXIT=143" in s and "stopped by signal 15" in s and "icanon echo" in s, f"SIGTERM:\n{s}")
        check("Response 1 of 2" not in s, f"the main screen is not restored:\n{s}")
        start(inp, out, "bob")
        wait_text("1/3 labelled by bob")
        keys("C-c")
        s = wait_text("MODE")
        check("EXIT=130" in s and "stopped by Ctrl-C" in s and "icanon echo" in s, f"Ctrl-C:\n{s}")
        q1 = [r for r in records(out) if r["id"] == "q1"]
        check(sorted(r["labeller"] for r in q1) == ["alice", "bob"], f"q1 records: {q1}")
        bob = [r for r in q1 if r["labeller"] == "bob"]
        check(bob and bob[0]["ranks"] == [1, 1, 2] and bob[0]["ratings"] == [5, 5, 3], f"bob's record {bob}")
        agreement = json.loads(run_checked([CLI, "data", "agreement", out, "--json"]).stdout)
        check(agreement["pairs"][0]["prompts"] == 1, f"agreement of alice and bob: {agreement}")
    finally:
        stop_server()

    r = subprocess.run([CLI, "label", "--input", inp, "--output", out, "--labeller", "carol"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "needs an interactive terminal" in r.stderr, f"no TTY: {r.returncode} {r.stderr}")
    bad = os.path.join(d, "bad.jsonl")
    with open(bad, "w") as f:
        f.write('{"prompt": "p", "responses": ["a", "b"]}\n{"prompt": "p", "responses": "ab"}\n')
    r = run_checked([CLI, "label", "--input", bad, "--output", out, "--labeller", "carol"], expect=2)
    check(f"{bad}:2: key 'responses': expected an array" in r.stderr, f"bad input: {r.stderr}")


main()
sys.exit(verdict())
