"""Which image a launch gets: a run without a GPU (CPU cell, export, quantization, reference run) never depends on
a GPU driver, a GPU run gets the CUDA build; the Docker launcher follows that choice before it asks the engine."""
from __future__ import annotations

from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.provisioning.image_choice import NO_GPU_VISIBLE, ImageChoice, choose_image
from orchestrator.provisioning.images import ImageState
from orchestrator.planning.gpus import GpuDescription

GPU = GpuDescription(0, "NVIDIA H100 80GB HBM3", "GPU-00000000-0000-0000-0000-000000000001", "00000000:19:00.0",
                     True, True)


def _state(flavor: str, state: str = "ready") -> ImageState:
    tag = "latest" if flavor == "cuda" else "cpu"
    return ImageState("mxnet", f"greenrt/mxnet:{tag}", state, f"{flavor} build on somewhere",
                      f"sha256:{flavor}-id" if state != "absent" else None,
                      {"org.greenrt.flavor": flavor} if state != "absent" else {})


BOTH = {"cuda": _state("cuda"), "cpu": _state("cpu")}
CUDA_ONLY = {"cuda": _state("cuda"), "cpu": _state("cpu", "absent")}
CPU_ONLY = {"cuda": _state("cuda", "absent"), "cpu": _state("cpu")}


def test_a_run_without_a_gpu_takes_the_cpu_build_even_beside_the_cuda_one():
    for runtimes in ({"runc"}, {"runc", "nvidia"}):
        choice = choose_image("mxnet", False, BOTH, runtimes)
        assert choice == ImageChoice("greenrt/mxnet:cpu", "sha256:cpu-id", "cpu", None, {})


def test_a_gpu_run_takes_the_cuda_build_with_the_default_runtime():
    choice = choose_image("mxnet", True, BOTH, {"runc", "nvidia"})
    assert (choice.reference, choice.flavor, choice.runtime, choice.environment) == ("greenrt/mxnet:latest", "cuda",
                                                                                     None, {})


def test_without_a_cpu_build_the_nvidia_runtime_gives_the_cuda_build_its_driver_but_no_gpu():
    choice = choose_image("mxnet", False, CUDA_ONLY, {"runc", "nvidia"})
    assert (choice.reference, choice.flavor, choice.runtime) == ("greenrt/mxnet:latest", "cuda", "nvidia")
    assert choice.environment == {"NVIDIA_VISIBLE_DEVICES": "none", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    assert choice.facts() == {"image": "sha256:cuda-id", "image_reference": "greenrt/mxnet:latest",
                              "image_flavor": "cuda", "container_runtime": "nvidia"}
    assert "nvidia runtime with no GPU visible" in choice.describe()


def test_without_a_cpu_build_or_the_nvidia_runtime_the_run_is_refused_with_the_remedy():
    why = choose_image("mxnet", False, CUDA_ONLY, {"runc", "io.containerd.runc.v2"})
    assert isinstance(why, str) and "\n" not in why
    assert "make cpu-images IMAGES=mxnet" in why and "greenrt/mxnet:latest" in why
    assert "runtimes: io.containerd.runc.v2, runc" in why


def test_a_gpu_run_is_not_given_a_cpu_build():
    why = choose_image("mxnet", True, CPU_ONLY, {"runc", "nvidia"})
    assert isinstance(why, str) and "only its CPU build (greenrt/mxnet:cpu)" in why
    assert "`greenrt images build mxnet` on an NVIDIA host" in why


def test_a_cpu_build_serves_cpu_runs_where_it_is_the_only_one():
    assert choose_image("mxnet", False, CPU_ONLY, {"runc"}).reference == "greenrt/mxnet:cpu"


def test_an_unready_image_is_named_with_its_state_and_nothing_built_names_both_commands():
    stale_cpu = {"cuda": _state("cuda", "absent"), "cpu": _state("cpu", "stale")}
    assert choose_image("mxnet", False, stale_cpu, {"runc"}).startswith("image greenrt/mxnet:cpu is stale")
    stale_cuda = {"cuda": _state("cuda", "stale"), "cpu": _state("cpu", "absent")}
    assert choose_image("mxnet", True, stale_cuda, {"nvidia"}).startswith("image greenrt/mxnet:latest is stale")
    nothing = {"cuda": _state("cuda", "absent"), "cpu": _state("cpu", "absent")}
    why = choose_image("mxnet", False, nothing, {"runc"})
    assert "make cpu-images IMAGES=mxnet" in why and "greenrt images build mxnet" in why


class _Images:
    """The image manager's answers for a host with the CUDA build of mxnet only; no engine is asked."""

    def __init__(self, runtimes: set[str]) -> None:
        self.runtimes = runtimes

    def flavors(self, environment: str) -> dict[str, ImageState]:
        return dict(CUDA_ONLY)

    def state(self, environment: str, flavor: str | None = None) -> ImageState:
        return CUDA_ONLY[flavor or "cuda"]

    def engine_runtimes(self) -> set[str]:
        return self.runtimes

    @property
    def client(self):
        raise AssertionError("a refused launch must not reach the engine")


def test_the_docker_launcher_refuses_a_driverless_run_before_the_engine_with_one_line(tmp_path):
    outcome = DockerLauncher(_Images({"runc"})).launch("mxnet", ["versions"], workdir=tmp_path, timeout_s=10,
                                                      env_vars={}, log_path=tmp_path / "log", gpus=None)
    assert outcome.exit_code is None and "make cpu-images IMAGES=mxnet" in outcome.start_error
    assert (tmp_path / "log").read_text() == outcome.start_error + "\n"


def test_the_docker_launcher_picks_the_nvidia_runtime_without_a_cpu_build():
    launcher = DockerLauncher(_Images({"runc", "nvidia"}))
    choice = launcher.choose("mxnet", None)
    assert choice.runtime == "nvidia" and choice.environment == NO_GPU_VISIBLE
    assert launcher.choose("mxnet", (GPU,)).runtime is None  # a GPU run: the device request, default runtime


class _Image:
    def __init__(self, flavor: str, digest: str) -> None:
        self.id, self.short_id = f"sha256:{flavor}-build", f"{flavor}-build"
        self.labels = {"org.greenrt.flavor": flavor, "org.greenrt.source-digest": digest,
                       "org.greenrt.base-image": "greenrt/base:bookworm"}


class _Client:
    """A docker client that holds the given tags."""

    def __init__(self, tags: dict[str, _Image]) -> None:
        self.images = self
        self.tags = tags

    def get(self, reference: str) -> _Image:
        import docker

        if reference not in self.tags:
            raise docker.errors.ImageNotFound(reference)
        return self.tags[reference]


def test_each_flavor_has_its_own_tag_and_the_cuda_build_is_the_environments_image():
    from orchestrator.provisioning.images import ImageManager, source_digest

    digest = source_digest("mxnet")
    images = ImageManager(_Client({"greenrt/mxnet:latest": _Image("cuda", digest),
                                   "greenrt/mxnet:cpu": _Image("cpu", digest)}))
    assert {f: (s.reference, s.state) for f, s in images.flavors("mxnet").items()} == {
        "cuda": ("greenrt/mxnet:latest", "ready"), "cpu": ("greenrt/mxnet:cpu", "ready")}
    assert images.state("mxnet").flavor == "cuda" and images.state("mxnet", "cpu").flavor == "cpu"


def test_a_cpu_build_an_older_greenrt_tagged_latest_counts_as_the_cpu_build():
    from orchestrator.provisioning.images import ImageManager, source_digest

    images = ImageManager(_Client({"greenrt/mxnet:latest": _Image("cpu", source_digest("mxnet"))}))
    found = images.flavors("mxnet")
    assert (found["cpu"].reference, found["cpu"].state) == ("greenrt/mxnet:latest", "ready")
    assert found["cuda"].state == "absent"
    choice = choose_image("mxnet", False, found, {"runc"})
    assert (choice.reference, choice.flavor) == ("greenrt/mxnet:latest", "cpu")
