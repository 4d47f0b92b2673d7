"""Attribute and metric names wattledger emits and ingests: the one place they are spelled.

Producers (the SDK, the sidecar collector, the simulator) and the consumer (ingest) import names
from here, so a span or metric written by one is read by the other. Names follow the
OpenTelemetry semantic conventions: GenAI spans as of semantic-conventions v1.41.1 (now in
``semantic-conventions-genai``) and hardware metrics as of v1.44.0. Every name this project adds
is in the ``wattledger.`` namespace; ``docs/semantic-conventions.md`` lists them with types and
units.
"""

from __future__ import annotations

#: Schema URL of the semantic conventions these names follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
#: Instrumentation scope name used by the SDK and collector.
SCOPE_NAME = "wattledger"

# --- GenAI spans (current names) -------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"  # seconds
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# --- GenAI spans (older names still sent by many producers; accept on ingest) ----------------
GEN_AI_SYSTEM = "gen_ai.system"  # -> gen_ai.provider.name
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # -> gen_ai.usage.input_tokens
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # -> ...output_tokens
GEN_AI_OPENAI_API_BASE = "gen_ai.openai.api_base"  # OpenLLMetry: the real endpoint
#: Event carrying a streamed chunk (OpenLLMetry / older conventions); its time gives TTFT.
EVENT_COMPLETION_CHUNK = "gen_ai.content.completion.chunk"
#: Message-content attributes: never stored unless explicitly enabled (privacy).
CONTENT_ATTRIBUTE_PREFIXES = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
)

# --- wattledger span attributes ---------------------------------------------------------------
WL_WORKLOAD = "wattledger.workload"  # string, workload class: chat, code-assist, ...
WL_TEAM = "wattledger.team"  # string
WL_TENANT = "wattledger.tenant"  # string; ingest stamps the API key's tenant regardless
WL_DEVICE_ID = "wattledger.device.id"  # string, same id as hw.id of the serving device
WL_QUANTIZATION = "wattledger.quantization"  # string: bf16, fp8, int4, ...
WL_LORA_ADAPTER = "wattledger.lora_adapter"  # string
WL_TENSOR_PARALLEL_SIZE = "wattledger.tensor_parallel_size"  # int
WL_SPECULATIVE_DECODING = "wattledger.speculative_decoding"  # string (method) or absent
WL_BATCH_SIZE = "wattledger.batch_size"  # int, running batch size when known
WL_QUALITY_SCORE = "wattledger.quality_score"  # double, 0..1
WL_TTFT_S = "wattledger.ttft_s"  # double, seconds from span start to first token
WL_ITL_COUNT = "wattledger.itl.count"  # int, number of inter-token gaps
WL_ITL_MEAN_S = "wattledger.itl.mean_s"  # double, seconds
WL_ITL_P50_S = "wattledger.itl.p50_s"  # double, seconds
WL_ITL_P95_S = "wattledger.itl.p95_s"  # double, seconds
WL_ITL_MAX_S = "wattledger.itl.max_s"  # double, seconds
WL_NODE = "wattledger.node"  # string, serving node when not in resource host.name

# --- Resource attributes -----------------------------------------------------------------------
SERVICE_NAME = "service.name"
HOST_NAME = "host.name"
K8S_POD_NAME = "k8s.pod.name"
K8S_NODE_NAME = "k8s.node.name"
K8S_NAMESPACE_NAME = "k8s.namespace.name"
K8S_CONTAINER_NAME = "k8s.container.name"  # also on GPU points: the pod a GPU is assigned to
K8S_POD_UID = "k8s.pod.uid"
WL_SITE = "wattledger.site"  # data-centre / site key for tariffs

# --- Hardware metrics (semantic conventions, hardware) ---------------------------------------
HW_ENERGY = "hw.energy"  # Counter, J, cumulative
HW_POWER = "hw.power"  # Gauge, W
HW_GPU_UTILIZATION = "hw.gpu.utilization"  # Gauge, 1 (fraction 0..1)
HW_GPU_MEMORY_USAGE = "hw.gpu.memory.usage"  # UpDownCounter, By
HW_GPU_MEMORY_LIMIT = "hw.gpu.memory.limit"  # UpDownCounter, By
HW_TEMPERATURE = "hw.temperature"  # Gauge, Cel
HW_ID = "hw.id"
HW_TYPE = "hw.type"  # gpu, cpu, memory, ...
HW_NAME = "hw.name"
HW_VENDOR = "hw.vendor"
HW_MODEL = "hw.model"
HW_GPU_TASK = "hw.gpu.task"
HW_PARENT = "hw.parent"  # hw.id of the enclosing device (a MIG slice's GPU)

# --- Serving-engine metrics (collector scrape of vLLM / TGI) ----------------------------------
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"  # Histogram, s
GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = "gen_ai.server.time_per_output_token"  # Histogram, s
#: What gen_ai.operation.name says on engine metrics: the engine's series cover every
#: generation request it served (chat and completions alike).
ENGINE_OPERATION_NAME = "text_completion"
WL_ENGINE = "wattledger.engine"  # string: vllm, tgi
WL_ENGINE_PROMPT_TOKENS = "wattledger.engine.prompt_tokens"  # Counter, {token}, cumulative
WL_ENGINE_GENERATION_TOKENS = "wattledger.engine.generation_tokens"  # Counter, {token}
WL_ENGINE_REQUESTS = "wattledger.engine.requests"  # Counter, {request}, finished successfully
WL_ENGINE_INTER_TOKEN_LATENCY = "wattledger.engine.inter_token_latency"  # Histogram, s, per token
WL_ENGINE_PREFILL_TIME = "wattledger.engine.request.prefill_time"  # Histogram, s, per request
WL_ENGINE_DECODE_TIME = "wattledger.engine.request.decode_time"  # Histogram, s, per request
WL_ENGINE_QUEUE_TIME = "wattledger.engine.request.queue_time"  # Histogram, s, per request
WL_ENGINE_REQUESTS_RUNNING = "wattledger.engine.requests.running"  # UpDownCounter, {request}
WL_ENGINE_REQUESTS_WAITING = "wattledger.engine.requests.waiting"  # UpDownCounter, {request}
WL_ENGINE_KV_CACHE_USAGE = "wattledger.engine.kv_cache.usage"  # Gauge, 1 (0..1)
WL_COLLECTOR_DROPPED = "wattledger.collector.dropped_samples"  # Counter, {cycle}: buffer overflow

# --- Per-pod energy attributed by an exporter (Kepler): an estimate, never a device ---------
WL_K8S_POD_ENERGY = "wattledger.k8s.pod.energy"  # Counter, J, cumulative as the exporter says
WL_K8S_POD_POWER = "wattledger.k8s.pod.power"  # Gauge, W

# --- wattledger metric attributes ------------------------------------------------------------
WL_POWER_SOURCE = "wattledger.power.source"  # nvml, amdsmi, rapl, prometheus, modeled, fake
WL_ENERGY_METHOD = "wattledger.energy.method"  # counter, power, modeled
WL_DEVICE_INDEX = "wattledger.device.index"  # int
WL_TDP_W = "wattledger.device.tdp_w"  # double, watts
WL_IDLE_POWER_W = "wattledger.device.idle_power_w"  # double, watts
#: double: a modeled device's range, relative (0.25 = the figure is taken to be within ±25 %)
WL_UNCERTAINTY_RATIO = "wattledger.power.uncertainty_ratio"
#: string: the pods sharing a GPU (time-slicing), "namespace/pod,..."; then no k8s.pod.name
WL_GPU_SHARED_PODS = "wattledger.gpu.shared_pods"
WL_ENERGY_ZONE = "wattledger.energy.zone"  # string: package, dram (per-pod energy)
WL_ENERGY_EXPORTER = "wattledger.energy.exporter"  # string: kepler (who attributed it)
WL_WORKLOAD_STATE = "wattledger.workload.state"  # string: running, terminated

# --- Provider from endpoint host ---------------------------------------------------------------
#: OpenAI-compatible clients report gen_ai.provider.name = "openai" whatever server they talk to;
#: the real provider comes from the endpoint's host. Suffix match, first hit wins; unknown hosts
#: keep the host name itself. Users extend this through configuration.
PROVIDER_HOSTS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("api.groq.com", "groq"),
    ("api.cerebras.ai", "cerebras"),
    ("api.together.xyz", "together"),
    ("api.together.ai", "together"),
    ("api.fireworks.ai", "fireworks"),
    ("api.deepseek.com", "deepseek"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("api.x.ai", "x_ai"),
    ("openrouter.ai", "openrouter"),
)


def provider_from_host(
    host: str | None, table: tuple[tuple[str, str], ...] = PROVIDER_HOSTS
) -> str | None:
    """The provider serving ``host`` (e.g. ``api.groq.com`` → ``groq``), or the host itself.

    Returns None for an empty host. ``localhost``/loopback hosts return ``None`` so the caller
    keeps what the producer said (a local vLLM is best named by the SDK's ``provider=``).
    """
    if not host:
        return None
    h = host.lower().strip().rstrip(".")
    for suffix, provider in table:
        if h == suffix or h.endswith("." + suffix):
            return provider
    if h in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or h.startswith("127."):
        return None
    return h


# --- SDK additions (appended for the SDK; see docs/semantic-conventions.md) --------------------
#: Input tokens written to a provider-managed cache (semantic-conventions-genai v0.1.0).
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # int
#: Older name for the same (Anthropic's ``cache_creation_input_tokens``); accepted on ingest.
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"  # int
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"  # int
GEN_AI_TOKEN_MODALITY = "gen_ai.token.modality"  # text | audio | image, on the usage counters
#: Stream closed by the consumer before the server finished (bool; absent = read to the end).
WL_STREAM_CLOSED_EARLY = "wattledger.stream.closed_early"

# --- GenAI client inference metrics (semantic-conventions-genai v0.1.0, client-inference.md;
# opt-in in the SDK: request_metrics=True). They replace gen_ai.client.operation.duration,
# .operation.time_to_first_chunk and the gen_ai.client.token.usage histogram (gen_ai.token.type).
GEN_AI_CLIENT_INFERENCE_DURATION = "gen_ai.client.inference.duration"  # Histogram, s
GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK = "gen_ai.client.inference.time_to_first_chunk"
GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.inference.time_per_output_chunk"
#: Usage counters ({token}, with gen_ai.token.modality), one per kind of token.
GEN_AI_CLIENT_USAGE_INPUT_TOKENS = "gen_ai.client.inference.usage.input_tokens"
GEN_AI_CLIENT_USAGE_OUTPUT_TOKENS = "gen_ai.client.inference.usage.output_tokens"
GEN_AI_CLIENT_USAGE_CACHE_READ_INPUT_TOKENS = (
    "gen_ai.client.inference.usage.cache_read.input_tokens"
)
GEN_AI_CLIENT_USAGE_CACHE_WRITE_INPUT_TOKENS = (
    "gen_ai.client.inference.usage.cache_write.input_tokens"
)
GEN_AI_CLIENT_USAGE_REASONING_OUTPUT_TOKENS = (
    "gen_ai.client.inference.usage.reasoning.output_tokens"
)
#: Per-operation token histograms ({token}).
GEN_AI_CLIENT_OPERATION_INPUT_TOKENS = "gen_ai.client.inference.operation.input_tokens"
GEN_AI_CLIENT_OPERATION_OUTPUT_TOKENS = "gen_ai.client.inference.operation.output_tokens"

# --- SDK self-metrics: nothing is dropped silently -------------------------------------------
WL_SDK_SPANS_EXPORTED = "wattledger.sdk.spans.exported"  # Counter, {span}
WL_SDK_SPANS_DROPPED = "wattledger.sdk.spans.dropped"  # Counter, {span}; error.type = reason
WL_SDK_QUEUE_SIZE = "wattledger.sdk.queue.size"  # Gauge, {span}
WL_SDK_QUEUE_CAPACITY = "wattledger.sdk.queue.capacity"  # Gauge, {span}
