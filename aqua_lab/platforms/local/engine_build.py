"""The local CPU engine: llama.cpp's own ``llama-server``, built once per CPU from the llama.cpp source
that the llama-cpp-python sdist on PyPI vendors.

    python -m aqua_lab.platforms.local.engine_build ensure   # build if needed, print the binary's path
    python -m aqua_lab.platforms.local.engine_build info     # this machine, the build, llama.cpp's system info

Why built here and how:

- ``llama-server`` batches concurrent requests (``--parallel`` slots, continuous batching), which
  llama-cpp-python's server cannot; PyPI ships no binary of it we can trust, so it is compiled from
  the pinned, checksummed sdist (``pip download``, the only registry this project reaches).
- ``GGML_NATIVE`` (``-march=native``) is the fastest code for the CPU at hand, and it is only ever run
  on that CPU: the cache key is the build settings *and* the CPU's model and feature flags, so a binary
  built on one machine is never picked up by another (pip's wheel cache did exactly that: it keys on
  the sdist alone).
- ggml's AMX kernels are compiled out (``-mno-amx-*``): on Xeons with AMX they segfault on the first
  decode of the default model (``ggml_backend_amx_mul_mat``, Q4_1 weights).  Everything else the CPU
  has (AVX-512, VNNI, the repacked weight layouts) stays on; see ``bench/engine_bench.py``.
- On a machine with an NVIDIA GPU and CUDA's compiler (``nvcc`` on PATH) the same source is built with
  ``GGML_CUDA=ON`` for that GPU's compute capability only (``nvidia-smi --query-gpu=compute_cap``):
  one architecture builds in minutes where ggml's default list takes most of an hour.  The GPU's
  architecture and nvcc's version join the cache key, so a CUDA build is never used on another GPU
  or by a machine without one, and a machine without nvcc keeps the CPU build, key unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from functools import lru_cache
from pathlib import Path

SDIST_NAME = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_FILE = f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
# Bump when the recipe below changes in a way the flags do not show.
RECIPE = 1

# ISA extensions ggml must not use even where the CPU reports them (see the module docstring).
DISABLED_ISA = ("amx-tile", "amx-int8", "amx-bf16")
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_OPENSSL=OFF",  # loopback only; and no TLS library to find
    "-DLLAMA_CURL=OFF",  # never downloads models
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # no web UI fetched at build time
)
# x86 feature flags that change what -march=native emits (and the CPU model, for -mtune).
_RELEVANT_FLAG_PREFIXES = ("sse", "ssse", "avx", "amx", "fma", "f16c", "bmi", "popcnt", "vnni", "aes", "sha", "gfni")


def isa_cflags() -> str:
    return " ".join(f"-mno-{isa}" for isa in DISABLED_ISA) if platform.machine() in ("x86_64", "AMD64") else ""


def cpu_facts() -> dict[str, object]:
    """The CPU as /proc/cpuinfo tells it: model, the feature flags that matter to ggml, cores."""
    model, flags = None, None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():  # every CPU repeats the same lines: the first of each says it
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            flags = sorted(f for f in value.split() if f.startswith(_RELEVANT_FLAG_PREFIXES))
    return {
        "machine": platform.machine(),
        "model": model or platform.processor() or platform.machine(),
        "flags": flags or [],
        "cores": os.cpu_count(),
    }


def cuda_target() -> dict[str, str] | None:
    """The CUDA build this machine gets: nvcc's path and version and the GPUs' compute capabilities
    (``"90"`` for an H100); None without nvcc on PATH or without an NVIDIA GPU that says its own."""
    return _cuda_target(os.environ.get("PATH", ""))


@lru_cache(maxsize=8)  # asked by every model server's command line; PATH is what can change it (tests)
def _cuda_target(path_env: str) -> dict[str, str] | None:
    nvcc, smi = shutil.which("nvcc", path=path_env), shutil.which("nvidia-smi", path=path_env)
    if not nvcc or not smi:
        return None
    caps = _query([smi, "--query-gpu=compute_cap", "--format=csv,noheader"])
    archs = sorted({c.strip().replace(".", "") for c in caps.splitlines() if c.strip().replace(".", "").isdigit()})
    if not archs:
        return None
    version = next((ln.strip() for ln in _query([nvcc, "--version"]).splitlines() if "release" in ln), "")
    return {"nvcc": nvcc, "nvcc_version": version, "architectures": ";".join(archs)}


def _query(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cuda_cmake_flags(cuda: dict[str, str]) -> list[str]:
    return [
        "-DGGML_CUDA=ON",
        f"-DCMAKE_CUDA_ARCHITECTURES={cuda['architectures']}",
        f"-DCMAKE_CUDA_COMPILER={cuda['nvcc']}",
    ]


def build_settings() -> dict[str, object]:
    """What the build depends on; a CPU-only machine's settings (and so its key) are the same as
    before the CUDA recipe existed."""
    settings: dict[str, object] = {
        "source": f"{SDIST_FILE} sha256:{SDIST_SHA256}",
        "recipe": RECIPE,
        "cmake": list(CMAKE_FLAGS),
        "cflags": isa_cflags(),
        "cpu": cpu_facts(),
    }
    cuda = cuda_target()
    if cuda:  # the nvcc path is where it is, not what it builds: only its version keys the cache
        settings["cmake"] = [*CMAKE_FLAGS, *cuda_cmake_flags({**cuda, "nvcc": "nvcc"})]
        settings["cuda"] = {"architectures": cuda["architectures"], "nvcc_version": cuda["nvcc_version"]}
    return settings


def is_cuda_build() -> bool:
    """Whether this machine's llama-server runs its models on the GPU (the CUDA recipe applies)."""
    return cuda_target() is not None


def build_key(settings: dict[str, object] | None = None) -> str:
    blob = json.dumps(settings or build_settings(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_root() -> Path:
    if os.environ.get("AQUA_LAB_ENGINE_CACHE"):
        return Path(os.environ["AQUA_LAB_ENGINE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aqua_lab" / "llama-server"


def installed_dir() -> Path:
    """The copy inside this Python environment: found whatever HOME a process runs with (tests, Jupyter
    with its own environment), and gone with the environment."""
    return Path(sys.prefix) / "libexec" / "aqua_lab" / build_key()


def binary_path() -> Path:
    """This CPU's build (it may not exist yet): the environment's copy, else the user's cache.
    ``AQUA_LAB_LLAMA_SERVER`` overrides both."""
    if os.environ.get("AQUA_LAB_LLAMA_SERVER"):
        return Path(os.environ["AQUA_LAB_LLAMA_SERVER"])
    installed = installed_dir() / "llama-server"
    if installed.is_file():
        return installed
    return cache_root() / build_key() / "llama-server"


@lru_cache(maxsize=8)
def binary_options(binary: str) -> frozenset[str]:
    """The long options ``binary --help`` lists (empty when it cannot be run): which of the newer
    flags (``--fit``) this build knows."""
    text = _query([binary, "--help"])
    return frozenset(word.rstrip(",") for word in text.split() if word.startswith("--"))


def build_info(binary: Path | None = None) -> dict[str, object] | None:
    path = (binary or binary_path()).with_name("build-info.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def missing_message() -> str:
    return (
        f"the local engine (llama.cpp's llama-server) is not built for this CPU yet ({binary_path()}); "
        "run ./run.sh or ./test.sh once, or `python -m aqua_lab.platforms.local.engine_build ensure` (≈8 min)"
    )


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _source(work: Path) -> Path:
    """The llama.cpp source tree: ``AQUA_LAB_LLAMA_SOURCE`` (an unpacked tree, for machines that
    cannot reach PyPI), else the vendored tree of the pinned sdist."""
    if os.environ.get("AQUA_LAB_LLAMA_SOURCE"):
        return Path(os.environ["AQUA_LAB_LLAMA_SOURCE"])
    sdist = _sdist(work)
    _say("unpacking the llama.cpp source")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name]
        tar.extractall(work, members=members, filter="data")
    return work / f"llama_cpp_python-{SDIST_VERSION}" / "vendor" / "llama.cpp"


def build_commands(settings: dict[str, object], source: Path, build_dir: Path, jobs: int) -> list[list[str]]:
    """cmake's configure and build command lines for ``settings``."""
    cflags = str(settings["cflags"])
    configure = ["cmake", "-S", str(source), "-B", str(build_dir), *CMAKE_FLAGS]
    cuda = cuda_target() if "cuda" in settings else None
    if cuda:
        configure += cuda_cmake_flags(cuda)
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    configure += [f"-DCMAKE_C_FLAGS={cflags}", f"-DCMAKE_CXX_FLAGS={cflags}"]
    return [configure, ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", str(jobs)]]


def _run_step(cmd: list[str], log) -> int:
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode


def _sdist(workdir: Path) -> Path:
    """The pinned sdist, downloaded once into the cache and checked against its sha256."""
    cached = cache_root() / "src" / SDIST_FILE
    if not cached.is_file() or _sha256(cached) != SDIST_SHA256:
        cached.parent.mkdir(parents=True, exist_ok=True)
        _say(f"downloading the llama.cpp source ({SDIST_NAME}=={SDIST_VERSION} sdist, 77 MB)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-binary", ":all:", f"{SDIST_NAME}=={SDIST_VERSION}", "-d", str(workdir)],
            check=True,
        )  # fmt: skip
        got = workdir / SDIST_FILE
        if _sha256(got) != SDIST_SHA256:
            raise RuntimeError(f"{got}: sha256 does not match the pinned {SDIST_SHA256}")
        shutil.move(got, cached)
    return cached


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build(jobs: int | None = None) -> Path:
    """Compile ``llama-server`` for this machine into the cache (CPU: ≈8 min on 2 cores; CUDA: one
    GPU architecture, minutes on 16 cores) and return its path."""
    settings = build_settings()
    target = cache_root() / build_key(settings)
    with tempfile.TemporaryDirectory(prefix="aqua-lab-llama-") as tmp:
        work = Path(tmp)
        source = _source(work)
        started = time.monotonic()
        cuda = settings.get("cuda")
        what = f"CUDA sm_{cuda['architectures']}" if isinstance(cuda, dict) else "this CPU"
        _say(f"building llama-server for {what} ({settings['cpu']['model']}); first time ≈8 min on 2 cores")
        log = work / "build.log"
        with open(log, "w") as out:
            for cmd in build_commands(settings, source, work / "build", jobs or os.cpu_count() or 1):
                if _run_step(cmd, out):
                    tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
                    raise RuntimeError(f"building llama-server failed ({' '.join(cmd[:3])} …):\n{tail}")
        built = work / "build" / "bin" / "llama-server"
        staging = target.with_name(target.name + ".part")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy2(built, staging / "llama-server")
        info = {**settings, "key": target.name, "built_at": time.time(), "build_seconds": time.monotonic() - started}
        (staging / "build-info.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    _say(f"llama-server built in {info['build_seconds']:.0f} s: {target / 'llama-server'}")
    return target / "llama-server"


def ensure() -> Path:
    """This CPU's ``llama-server`` in this environment: copied from the cache, built when neither has it."""
    path = binary_path()
    if os.environ.get("AQUA_LAB_LLAMA_SERVER"):
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"AQUA_LAB_LLAMA_SERVER={path} is not an executable file")
        return path
    installed = installed_dir() / "llama-server"
    if installed.is_file():
        return installed
    cached = cache_root() / build_key() / "llama-server"
    if not cached.is_file():
        cached = build()
    staging = installed.parent.with_name(installed.parent.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("llama-server", "build-info.json"):
        shutil.copy2(cached.with_name(name), staging / name)
    shutil.rmtree(installed.parent, ignore_errors=True)
    staging.rename(installed.parent)
    return installed


def system_info(binary: Path | None = None, timeout: float = 30) -> str:
    """llama.cpp's own ``system_info`` line: the CPU features ggml was built with and uses here (read
    off a short load of the default model; "" when it is not installed)."""
    from .ports import free_port
    from .smollm2 import smollm2_path

    binary, model = binary or binary_path(), smollm2_path()
    if model is None or not binary.is_file():
        return ""
    port = free_port()
    cmd = [str(binary), "--model", str(model), "--ctx-size", "256", "--threads", "1", "--host", "127.0.0.1",
           "--port", str(port), "--no-webui", "--log-verbosity", "4"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            if "system_info:" in line:
                return line.split("system_info:", 1)[1].strip()
            if time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait()
    return ""


def info() -> dict[str, object]:
    path = binary_path()
    return {
        "binary": str(path),
        "built": path.is_file(),
        "cpu": cpu_facts(),
        "build": build_info(path),
        "system_info": system_info(path),
    }


def main(argv: list[str]) -> int:
    verb = argv[0] if argv else "ensure"
    if verb == "ensure":
        try:
            print(ensure())
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            print(f"aqua-lab: {exc}", file=sys.stderr)
            return 1
        return 0
    if verb == "info":
        print(json.dumps(info(), indent=2))
        return 0
    if verb == "key":
        print(build_key())
        return 0
    print("usage: python -m aqua_lab.platforms.local.engine_build [ensure|info|key]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
