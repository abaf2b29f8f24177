"""The paper-scale job array (`scripts/slurm/extract_array.sbatch`) on a real single-node Slurm.

A private cluster is started in a temporary folder: `munged` with its own key and socket,
`slurmctld` and `slurmd` with a one-node `slurm.conf` on free local ports (no systemd, no cgroups
needed: `proctrack/linuxproc`, `task/none`). Array tasks extract small random-initialised timm and
open_clip models into one store at once; one test cancels a task while it writes (its chunks, then
the store's commit) and resubmits it.
Where Slurm is missing or cannot start, these tests skip and say why (`NOREP_REQUIRE_SLURM=1`, set
by `.ci/run`, makes that a failure instead). The last test, without Slurm, replays a race between
two array tasks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from norep.storage import Store

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm" / "extract_array.sbatch"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue", "sinfo")
START_S = 60  # seconds for the daemons to start and the node to become idle
JOB_S = 600  # a guard against a hung job, not a speed target

TINY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
CLIP = "open_clip:norep-test-tiny-clip"
MODELS = [
    "timm:test_resnet.r160_in1k",
    "timm:test_convnext.r160_in1k",
    "timm:test_efficientnet.r160_in1k",
    CLIP,
]

# What the tasks run as `norep` (the script's NOREP): the real CLI, after registering the tiny
# open_clip configuration; for the cancel test it slows one model down, logs the chunks written, or
# stops inside the commit of a model.
WRAPPER = """
import json, os, sys, time
argv = sys.argv[1:]
model = argv[argv.index("--model") + 1]
def stamp(what):
    if os.environ.get("NOREP_TEST_TIMES"):
        with open(os.environ["NOREP_TEST_TIMES"], "a") as f:
            f.write(json.dumps([model, what, time.time()]) + "\\n")
stamp("start")
if any(a.startswith("open_clip:") for a in argv):
    import open_clip
    open_clip.add_model_config(os.environ["NOREP_TEST_CLIP_CONFIGS"])
import norep.extract._chunks as chunks
if model == os.environ.get("NOREP_TEST_SLOW_MODEL"):
    get = chunks._Images.__getitem__
    chunks._Images.__getitem__ = lambda self, i: (time.sleep(0.8), get(self, i))[1]
log = os.environ.get("NOREP_TEST_CHUNK_LOG")
if log:
    save = chunks._save_npz_atomic
    def logged(path, **arrays):
        save(path, **arrays)
        with open(log, "a") as f:
            f.write(json.dumps([model, path.parent.name, path.name]) + "\\n")
    chunks._save_npz_atomic = logged
if model == os.environ.get("NOREP_TEST_HANG_IN_COMMIT"):  # stop inside add_model, just before store.json
    from norep.storage import Store
    add, commit, adding = Store.add_model, Store._commit, []
    def add_model(self, *args, **kwargs):
        adding.append(True)
        return add(self, *args, **kwargs)
    def hanging_commit(self, change, info=None):
        if adding:  # the model's version directory is written and both locks are held
            open(os.environ["NOREP_TEST_HANG_FLAG"], "w").close()
            time.sleep(3600)
        return commit(self, change, info)
    Store.add_model, Store._commit = add_model, hanging_commit
from norep.cli import main
rc = main(argv)
stamp("end")
sys.exit(rc)
"""


def _unavailable(reason: str):
    if os.environ.get("NOREP_REQUIRE_SLURM", "") not in ("", "0"):
        pytest.fail(f"Slurm is required here (NOREP_REQUIRE_SLURM=1) but {reason}")
    pytest.skip(reason)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free local ports (all bound at once, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, n: int = 6) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return "(no log)"


class Cluster:
    """A single-node Slurm cluster of this test session: its folder, environment and daemons."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}

    def run(self, *argv: str, check: bool = True, timeout: float = 60, env: dict | None = None) -> str:
        proc = subprocess.run(argv, env=env or self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def daemon(self, name: str, *argv: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.procs.append(
            subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
        log.close()

    def start(self) -> None:
        missing = [b for b in BINARIES if shutil.which(b) is None]
        if missing:
            _unavailable(f"Slurm is not installed ({', '.join(missing)} not on PATH; apt-get install slurm-wlm munge)")
        for d in ("munge", "log", "state", "spool"):
            (self.root / d).mkdir(mode=0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = self.root / "munge" / "munge.socket"
        self.daemon(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={sock}",
            f"--pid-file={self.root / 'munge' / 'munged.pid'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
        )
        if not self._wait(lambda: sock.exists(), 10):
            _unavailable(f"munged did not start: {_tail(self.root / 'log' / 'munged.out')}")
        self._write_conf(sock)
        self.daemon("slurmctld", "slurmctld", "-D", "-i", "-f", str(self.root / "slurm.conf"))
        self.daemon("slurmd", "slurmd", "-D", "-f", str(self.root / "slurm.conf"), "-N", self.node)
        state = lambda: self.run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False, timeout=10).strip()  # noqa: E731
        if not self._wait(lambda: state() in ("idle", "mixed", "allocated"), START_S):
            _unavailable(
                f"the Slurm node did not become idle within {START_S} s (state {state()!r}); slurmctld: "
                f"{_tail(self.root / 'log' / 'slurmctld.log')}; slurmd: {_tail(self.root / 'log' / 'slurmd.log')}"
            )

    def _wait(self, ready, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                return False  # a daemon exited
            try:
                if ready():
                    return True
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.2)
        return False

    def _write_conf(self, sock: Path) -> None:
        hw = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30).stdout
        fields = dict(re.findall(r"(\w+)=(\S+)", hw.splitlines()[0] if hw else ""))
        if "NodeName" not in fields:
            _unavailable(f"`slurmd -C` did not describe this machine: {hw.strip()!r}")
        self.node = fields["NodeName"]
        cpus = " ".join(
            f"{k}={fields[k]}"
            for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
            if k in fields
        )
        user = self.run("id", "-un", env=os.environ).strip()
        r, (ctld_port, slurmd_port) = self.root, _free_ports(2)
        conf = f"""\
ClusterName=norep-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=4
NodeName={self.node} NodeAddr=127.0.0.1 {cpus} RealMemory=1000 State=UNKNOWN
PartitionName=norep Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
"""
        # MinJobAge=4: `sbatch --wait` polls every 2 s (with a larger MinJobAge it waits up to 32 s
        # between polls); finished tasks then leave squeue within a minute, so the tests read their logs.
        (r / "slurm.conf").write_text(conf)
        (r / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")

    def stop(self) -> None:
        if (self.root / "slurm.conf").exists():
            self.run("scancel", "--partition=norep", check=False, timeout=30)
            self._wait(lambda: not self.run("squeue", "-h", check=False, timeout=10).strip(), 30)
        for p in reversed(self.procs):  # slurmd, slurmctld, munged
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def task_env(cluster, tmp_path_factory):
    """The data and the environment the array tasks run with (what sbatch exports to them)."""
    import norep
    from norep.data.imagedata import VOC_CLASSES, imagenet_synsets
    from test_imagedata import _voc

    d = tmp_path_factory.mktemp("inputs")
    (d / "clip").mkdir()
    (d / "clip" / "norep-test-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    (d / "wrapper.py").write_text(WRAPPER)
    rng = np.random.default_rng(0)
    for wnid in imagenet_synsets()[:4]:  # a small ImageNet validation folder: 20 images, calib 4 + test 16
        (d / "val" / wnid).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / "val" / wnid / f"{i}.png")
    # a small VOC 2007 (20 train, 10 val, 10 test images) in which every class has positives and
    # negatives in every image set: image i shows classes i and i + 1 (mod 20)
    sets = {"train": range(20), "val": range(20, 40, 2), "test": range(40, 60, 2)}
    obj = lambda i: [(VOC_CLASSES[i % 20], 0), (VOC_CLASSES[(i + 1) % 20], 0)]  # noqa: E731
    _voc(d, {s: {f"{i + 1:06d}": obj(i) for i in ids} for s, ids in sets.items()})
    lib = str(Path(norep.__file__).resolve().parents[1])
    env = {
        **cluster.env,
        "PYTHONPATH": os.pathsep.join(
            dict.fromkeys([lib, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
        ),
        "NOREP": f"{sys.executable} {d / 'wrapper.py'}",
        "NOREP_TEST_CLIP_CONFIGS": str(d / "clip"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    return d, env


def _submit(env, models_file: Path, store: Path, data: list[str], logs: Path, array: str, *, wait: bool = True):
    """``sbatch --wait --array`` of the repository's script: the finished process, or (``wait=False``)
    the running one, whose first line of output is the job id."""
    argv = [
        "sbatch",
        "--parsable",
        f"--array={array}",
        "--cpus-per-task=1",
        f"--output={logs}/%A_%a.out",
        "--wait",
        str(SCRIPT),
        str(models_file),
        str(store),
        *data,
        "--",
        "--random-init",
        "--device",
        "cpu",
    ]
    if wait:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=JOB_S)
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.out")))


def _cli(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "norep.cli", *argv], env=env, capture_output=True, text=True, timeout=JOB_S
    )


@pytest.mark.slow
def test_job_array_fills_one_store_then_verify_and_notebooks(cluster, task_env, tmp_path):
    d, env = task_env
    env = {**env, "NOREP_TEST_TIMES": str(tmp_path / "times.jsonl")}
    models = tmp_path / "models.txt"
    # the template set is one model's own flag; a comment and a blank line do not count as tasks
    models.write_text(
        "# four models, one task each\n" + "\n".join(MODELS[:3]) + f"\n\n{CLIP} --zero-shot-templates simple\n"
    )
    store, logs = tmp_path / "store", tmp_path / "logs"
    logs.mkdir()

    t0 = time.monotonic()
    # every task extracts two data sets: the first task creates the store from the ImageNet folder,
    # then each adds the VOC splits (under the store's lock) and merges their embeddings into its model
    proc = _submit(env, models, store, [f"imagenet:{d / 'val'}", f"voc2007:{d / 'VOCdevkit'}"], logs, "1-4")
    wall = time.monotonic() - t0
    assert proc.returncode == 0, f"{proc.stderr}\n{_logs(logs)}"
    job = proc.stdout.split()[0]
    for i, m in enumerate(MODELS, 1):
        assert f"norep-extract: task {i} done: {m}" in (logs / f"{job}_{i}.out").read_text(), _logs(logs)

    # the four tasks ran at once: every one started before any finished
    times = [json.loads(line) for line in (tmp_path / "times.jsonl").read_text().splitlines()]
    starts = {m: t for m, what, t in times if what == "start"}
    ends = {m: t for m, what, t in times if what == "end"}
    assert sorted(starts) == sorted(ends) == sorted(MODELS)
    assert max(starts.values()) < min(ends.values()), "the array tasks did not overlap"

    st = Store.open(store)
    assert sorted(st.model_names()) == sorted(MODELS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "models.txt", "store", "times.jsonl"]  # built once
    assert {s: st.n_examples(s) for s in st.splits()} == {
        "calib": 4, "test": 16, "down_train": 20, "down_val": 10, "down_test": 10,
    }  # fmt: skip
    for m in MODELS:
        assert st.logits(m, "test").shape == (16, 1000) and st.embeddings(m, "calib").shape[0] == 4
        assert st.embeddings(m, "down_train").shape[0] == 20 and not st.has_logits(m, "down_train")
    assert st.meta(CLIP)["recipe"]["template_set"] == "simple"
    verify = _cli("store", "verify", str(store), env=env)
    assert verify.returncode == 0, verify.stderr
    print(f"\nslurm array: 4 tasks in {wall:.1f} s (sbatch --wait); store verify: {verify.stdout.strip()}")

    assert _cli("store", "set", str(store), "--base-model", MODELS[0], env=env).returncode == 0
    out = tmp_path / "book"
    # Three chapters that read what the array wrote (logits of the ImageNet-layout split, the VOC
    # downstream split and its embeddings); 02 and 04 need models whose error rates differ (here every
    # model is at chance), and the others add run time, not coverage of the concurrent writes.
    chapters = ["00", "01", "06"]
    t0 = time.monotonic()
    only = [a for c in chapters for a in ("--only", c)]
    nb = _cli(
        "notebooks", "run", "--store", str(store), "--out", str(out), "-q", "-p", "profile=student", *only, env=env
    )
    assert nb.returncode == 0, nb.stderr[-3000:]
    runs = json.loads((out / ".norep-notebooks.json").read_text())["notebooks"]
    executed = sorted(runs)
    assert [e[:2] for e in executed] == chapters, executed
    for e in executed:
        cells = json.loads((out / f"{e}.ipynb").read_text())["cells"]
        assert any(c.get("outputs") for c in cells if c["cell_type"] == "code"), e
    seconds = ", ".join(f"{e[:2]} {v['seconds']:.1f} s" for e, v in sorted(runs.items()))
    print(f"notebooks: {len(executed)} chapters executed in {time.monotonic() - t0:.1f} s ({seconds})")


def _cancel_when(cluster, proc, task: str, ready, logs: Path) -> None:
    """Wait until ``ready()``, then ``scancel`` array task ``task`` of the running ``sbatch --wait``."""
    try:
        deadline = time.monotonic() + JOB_S
        while time.monotonic() < deadline and not ready():
            assert proc.poll() is None, f"the array ended before it could be cancelled\n{_logs(logs)}"
            time.sleep(0.1)
        cluster.run("scancel", task, timeout=30)
        proc.communicate(timeout=JOB_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0  # sbatch --wait reports the cancelled task


@pytest.mark.slow
def test_cancelled_tasks_leave_nothing_half_visible_and_a_resubmission_completes(cluster, task_env, tmp_path):
    """`scancel` of a task while it writes its chunks, then of its resubmission inside the store's
    commit (arrays written, locks held): each time the store stays valid, the other task's model is
    kept and the cancelled model is absent; the next resubmission resumes from the chunks already
    written and completes the store."""
    d, env = task_env
    fast, slow = MODELS[1], MODELS[0]
    chunks, flag = tmp_path / "chunks.jsonl", tmp_path / "in-commit"
    models = tmp_path / "models.txt"
    models.write_text(f"{fast}\n{slow} --batch-size 2 --chunk-size 2\n")  # the slow one: 10 chunks of 2 images
    store, logs, data = tmp_path / "store", tmp_path / "logs", [f"imagenet:{d / 'val'}"]
    logs.mkdir()
    env = {**env, "NOREP_TEST_CHUNK_LOG": str(chunks)}

    def written(since: int = 0) -> set:
        return {tuple(json.loads(line)[1:]) for line in chunks.read_text().splitlines()[since:]}

    def check_store() -> Store:
        st = Store.open(store)
        st.verify()  # every listed array complete and matching its checksum
        assert st.model_names() == [fast], "the cancelled model is visible"
        verify = _cli("store", "verify", str(store), env=env)
        assert verify.returncode == 0, verify.stderr
        return st

    # 1. cancelled while it writes its chunks
    proc = _submit({**env, "NOREP_TEST_SLOW_MODEL": slow}, models, store, data, logs, "1-2", wait=False)
    job = proc.stdout.readline().split()[0]
    _cancel_when(cluster, proc, f"{job}_2", lambda: len(list(store.glob("_partial/*/*/*/chunk_*.npz"))) >= 3, logs)
    assert "task 1 done" in (logs / f"{job}_1.out").read_text(), _logs(logs)
    task2 = (logs / f"{job}_2.out").read_text()
    assert "CANCELLED" in task2 and "task 2 done" not in task2, task2  # slurmstepd's line: *** JOB ... CANCELLED ***
    finished = {tuple(p.parts[-2:]) for p in store.glob("_partial/*/*/*/chunk_*.npz")}
    assert 3 <= len(finished) < 10, finished
    st = check_store()
    kept = {s: st.logits(fast, s).copy() for s in ("calib", "test")}
    added_at = st.meta(fast)["added_at"]

    # 2. resubmitted: resumes the chunks, then is cancelled inside the commit
    before = len(chunks.read_text().splitlines())
    hang = {**env, "NOREP_TEST_HANG_IN_COMMIT": slow, "NOREP_TEST_HANG_FLAG": str(flag)}
    proc = _submit(hang, models, store, data, logs, "2", wait=False)
    job2 = proc.stdout.readline().split()[0]
    _cancel_when(cluster, proc, f"{job2}_2", flag.exists, logs)
    rerun = written(before)
    assert not rerun & finished, "finished chunks were computed again"
    assert len(rerun | finished) == 10  # calib: 2 chunks, test: 8
    assert list(store.glob("models/*test_resnet*/v*/meta.json")), "the commit was not reached"
    check_store()

    # 3. resubmitted again: nothing left to compute, the model is committed (the locks of the killed
    # task were released with it)
    before = len(chunks.read_text().splitlines())
    proc = _submit(env, models, store, data, logs, "2")
    assert proc.returncode == 0, f"{proc.stderr}\n{_logs(logs)}"
    assert not written(before)
    st = Store.open(store)
    st.verify()
    assert sorted(st.model_names()) == sorted([fast, slow])
    assert st.meta(fast)["added_at"] == added_at  # the other model was not touched
    for s, arr in kept.items():
        np.testing.assert_array_equal(st.logits(fast, s), arr)
    assert st.logits(slow, "test").shape == (16, 1000) and st.embeddings(slow, "calib").shape[0] == 4
    assert not (store / "_partial").exists()
    # the killed commit's version directory was removed by the commit that succeeded it
    assert len(list(store.glob("models/*test_resnet*/v*"))) == 1
    verify = _cli("store", "verify", str(store), env=env)
    assert verify.returncode == 0 and "leftover" not in verify.stdout + verify.stderr, verify.stdout
    print(
        f"\nslurm cancel: task {job}_2 cancelled after {len(finished)} of 10 chunks; resubmitted, it wrote "
        f"{len(rerun)} and was cancelled inside the commit; resubmitted again, it completed the store "
        f"({verify.stdout.strip()})"
    )


def test_a_task_finishing_while_another_starts_does_not_fail_it(tmp_path, monkeypatch):
    """An array task that finishes removes the store's shared ``_partial`` folder once it is empty;
    another task may have just created that folder on its way to creating its own below it. Replayed
    here: the first time ``_partial`` is created, it is removed again at once (what the finishing task
    does), and the extraction still succeeds."""
    from norep.extract import extract

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(data / c / "0.png")
    mkdir, removed = os.mkdir, []

    def racing_mkdir(path, *args, **kwargs):
        mkdir(path, *args, **kwargs)
        if os.path.basename(path) == "_partial" and not removed:
            os.rmdir(path)  # the other task's cleanup, between this task's two mkdir calls
            removed.append(path)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    extract(MODELS[0], f"imagefolder:{data}", tmp_path / "S", random_init=True, device="cpu", progress=False)
    assert removed, "the race was not replayed"
    assert Store.open(tmp_path / "S").model_names() == [MODELS[0]]


def test_script_runs_one_extract_per_data_and_refuses_bad_tasks(tmp_path):
    """The script without Slurm (a task run by hand): flags for every model, then the model's own
    flags, one `extract` per data set in order; a task beyond the list or none is one clear line."""
    models = tmp_path / "models.txt"
    models.write_text("# comment\ntimm:a\n\n  \n paper:VGG19 BatchNorm --batch-size 8 --name B\n")
    (tmp_path / "echo.py").write_text("import sys\nprint(sys.argv[1:])\n")
    env = {**os.environ, "NOREP": f"{sys.executable} {tmp_path / 'echo.py'}"}  # NOREP: words, no quoting

    def task(n, *extra):
        argv = ["bash", str(SCRIPT), str(models), "S", "imagenet:/v", "voc2007:/d", *extra]
        run_env = env if n is None else {**env, "SLURM_ARRAY_TASK_ID": n}
        return subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=60)

    p = task("2", "--", "--precision", "bf16")
    assert p.returncode == 0, p.stderr
    calls = [line for line in p.stdout.splitlines() if line.startswith("[")]
    common = ["--store", "S", "--no-progress", "--precision", "bf16", "--batch-size", "8", "--name", "B"]
    assert calls == [
        str(["extract", "--model", "paper:VGG19 BatchNorm", "--data", "imagenet:/v", *common]),
        str(["extract", "--model", "paper:VGG19 BatchNorm", "--data", "voc2007:/d", *common]),
    ]
    p = task("1")
    assert (
        p.returncode == 0
        and "'--model', 'timm:a', '--data', 'imagenet:/v', '--store', 'S', '--no-progress']" in p.stdout
    )
    for n, match in (("3", "lists 2 model(s); submit with --array=1-2"), (None, "SLURM_ARRAY_TASK_ID is not set")):
        p = task(n)
        assert p.returncode == 1 and p.stderr.startswith("norep-extract: ") and match in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
    models.write_text("# only a comment\n")
    p = task("1")
    assert p.returncode == 1 and p.stderr.startswith(f"norep-extract: {models} lists no model (one per line;")


def test_fetch_weights_loads_each_listed_model_and_names_each_failure(tmp_path, monkeypatch, capsys):
    """`scripts/slurm/fetch_weights.py` reads the array's model list, resolves `paper:` names and loads
    each model with its weights (the tokenizer too for CLIP-like ones); offline and uncached, every
    model fails with its own line and the exit status says so."""
    import importlib.util

    import norep.zoo.loading as loading

    spec = importlib.util.spec_from_file_location("fetch_weights", SCRIPT.parent / "fetch_weights.py")
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    models = tmp_path / "models.txt"
    models.write_text(
        "# header\ntimm:resnet18.a1_in1k --batch-size 8\n\npaper:CLIP-S\npaper:VGG19 BatchNorm --name V\npaper:MPL\n"
    )

    loaded, texts = [], []

    class Fake:
        def __init__(self, name):
            self.is_clip_like = name.startswith("open_clip:")

        def encode_text(self, t):
            texts.append(t)

    def fake_load(name, random_init=False, device="cpu"):
        assert not random_init
        loaded.append(name)
        return Fake(name), None

    monkeypatch.setattr(loading, "load", fake_load)
    assert fetch.main([str(models)]) == 1  # MPL has no public weights
    out, err = capsys.readouterr()
    assert loaded == ["timm:resnet18.a1_in1k", "open_clip:ViT-B-32.openai", "timm:vgg19_bn.tv_in1k"]
    assert len(texts) == 1  # the CLIP model's tokenizer
    assert out.splitlines() == [
        "cached: timm:resnet18.a1_in1k",
        "cached: paper:CLIP-S (open_clip:ViT-B-32.openai)",
        "cached: paper:VGG19 BatchNorm (timm:vgg19_bn.tv_in1k)",
    ]
    assert "norep-fetch: paper:MPL: no public weights" in err
    monkeypatch.undo()

    models.write_text("timm:test_resnet.r160_in1k\ntimm:test_convnext.r160_in1k\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "th")}
    p = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "fetch_weights.py"), str(models)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and not p.stdout, p.stderr
    for line, m in zip(lines[1:3], ("test_resnet", "test_convnext"), strict=True):
        assert line.startswith(f"norep-fetch: timm:{m}.r160_in1k: weights for") and "not in the local cache" in line
    assert lines[0].startswith("norep-fetch: HF_HUB_OFFLINE is set") and "2 model(s) not cached" in lines[3]
