"""The roofline performance and power model of one serving replica.

A step of a continuously batching engine runs the model once over the tokens scheduled in it.
Its kernel time is the larger of two roofline bounds:

* compute: FLOPs / (peak dense FLOP/s x ``mfu``), with FLOPs = 2 x active parameters per token
  plus attention (4 x layers x attention width per token and context token);
* memory: bytes moved / (peak bandwidth x ``mbu``), with bytes = the weights read once per step
  (for a mixture of experts only the experts the step's tokens touch) plus the KV cache of
  every running sequence.

Prefill of a long prompt is compute-bound; a decode step is bandwidth-bound until the batch is
large. Outside the kernels the engine spends ``step_overhead_s`` on the GPU (launches,
sampling), ``tp_overhead_s_per_doubling`` per doubling of tensor parallelism (all-reduce) and
``per_seq_overhead_s`` per running sequence on the CPU while the GPU waits.

With ``comm_model`` on (the what-if planner's setting) a replica split over several devices
also moves activations over the interconnect every step: tensor parallelism all-reduces the
hidden state twice per layer (ring all-reduce, 2 (n-1)/n of the bytes per device); expert
parallelism all-reduces once per layer and sends each token to its ``k`` experts and back
(all-to-all). That time is GPU-side overhead. The fleet simulator's event kernel does not model
it (its tensor-parallel cost is the engine's ``tp_overhead_s_per_doubling`` alone).

Pipeline parallelism (``pp`` stages of ``tp`` devices) runs ``pp`` micro-batches in flight: a
token passes every stage once, so a step of the whole model on one micro-batch takes the time
of the full model on ``tp`` devices while all ``tp x pp`` devices draw power.

Power is idle + (TDP - idle) x activity: during kernels activity = min(1, compute_weight x the
achieved fraction of peak FLOP/s + memory_weight x the achieved fraction of peak bandwidth);
during GPU-side overhead ``overhead_fraction``; during CPU waits ``wait_fraction``. All
functions take numpy arrays and return arrays, so the fleet simulator evaluates millions of
steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from wattledger.catalog.specs import (
    Catalog,
    DeviceSpec,
    EngineSpec,
    ModelSpec,
    PowerSpec,
    QuantSpec,
)
from wattledger.errors import ConfigError

FloatArray = NDArray[np.float64]
#: Context length at which the decode-token work weight is evaluated (see :meth:`decode_weight`).
REFERENCE_CONTEXT_TOKENS = 1024


@dataclass(frozen=True)
class StepCost:
    """Time and energy of a batch of steps (one element per step).

    Attributes:
        time_s: Wall time of the step, seconds.
        dynamic_energy_j: Energy above the idle baseline, joules (all GPUs of the replica).
        busy_s: Time the GPU is executing work (kernels and GPU-side overhead), seconds.
        compute_s: Ideal compute time at peak FLOP/s, seconds.
        memory_s: Ideal memory time at peak bandwidth, seconds.
    """

    time_s: FloatArray
    dynamic_energy_j: FloatArray
    busy_s: FloatArray
    compute_s: FloatArray
    memory_s: FloatArray

    @property
    def power_above_idle_w(self) -> FloatArray:
        """Mean power above idle during the step, watts."""
        return self.dynamic_energy_j / self.time_s


@dataclass(frozen=True)
class PerfModel:
    """Roofline model of one replica: an LLM at a quantization on ``tp`` identical devices."""

    device: DeviceSpec
    model: ModelSpec
    quant: QuantSpec
    engine: EngineSpec
    power: PowerSpec
    tp: int = 1
    #: Pipeline stages (each of ``tp`` devices).
    pp: int = 1
    #: ``tp`` (tensor parallel everywhere) or ``ep`` (experts spread over the devices).
    parallelism: str = "tp"
    #: KV-cache bytes per element when it differs from the quantization's (``--kv-cache-dtype``).
    kv_bytes_per_element: float | None = None
    #: Whether steps pay for interconnect traffic (see the module docstring).
    comm_model: bool = False
    #: Bytes per activation element sent between devices.
    activation_bytes: float = 2.0

    @classmethod
    def from_catalog(
        cls,
        catalog: Catalog,
        hardware: str,
        llm_model: str,
        quantization: str = "bf16",
        engine: str = "vllm",
        tp: int = 1,
        **options: object,
    ) -> PerfModel:
        """Look the parts up in ``catalog``; unknown names raise :class:`ConfigError`."""
        parts = (
            ("hardware", hardware, catalog.devices),
            ("llm_model", llm_model, catalog.models),
            ("quantization", quantization, catalog.quantizations),
            ("engine", engine, catalog.engines),
        )
        for kind, key, table in parts:
            if key not in table:
                raise ConfigError(
                    f"Unknown {kind} '{key}'.", hint=f"Known: {', '.join(sorted(table))}."
                )
        if tp < 1:
            raise ConfigError(f"Tensor parallel size must be at least 1, not {tp}.")
        return cls(
            catalog.devices[hardware],
            catalog.models[llm_model],
            catalog.quantizations[quantization],
            catalog.engines[engine],
            catalog.power,
            tp,
            **options,  # type: ignore[arg-type]
        )

    # --- static properties -------------------------------------------------------------------
    @property
    def devices(self) -> int:
        """Devices of the replica (``tp x pp``)."""
        return self.tp * self.pp

    @property
    def flops_per_s(self) -> float:
        """Peak dense FLOP/s of one stage (``tp`` devices) in the compute precision."""
        return self.device.peak_flops(self.quant.compute) * self.tp

    @property
    def bandwidth_bps(self) -> float:
        """Peak memory bandwidth of one stage (``tp`` devices), bytes/s."""
        return self.device.memory_bandwidth_bps.value * self.tp

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights at this quantization."""
        return self.model.total_params.value * self.quant.weight_bytes_per_param.value

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of context."""
        return self.model.kv_elements_per_token * self.kv_element_bytes

    @property
    def kv_element_bytes(self) -> float:
        """Bytes per KV-cache element."""
        if self.kv_bytes_per_element is not None:
            return self.kv_bytes_per_element
        return self.quant.kv_bytes_per_element.value

    def kv_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        """KV-cache bytes of one sequence holding ``context_tokens`` (sliding windows capped)."""
        c = np.asarray(context_tokens, dtype=np.float64)
        return np.asarray(self.model.kv_elements(c), dtype=np.float64) * self.kv_element_bytes

    @property
    def usable_memory_bytes(self) -> float:
        """Memory the engine may use on all devices (vLLM's gpu_memory_utilization)."""
        share = self.engine.gpu_memory_utilization.value
        return self.device.memory_bytes.value * self.devices * share

    @property
    def kv_capacity_tokens(self) -> float:
        """Tokens of KV cache that fit next to the weights (vLLM's gpu_memory_utilization)."""
        return (self.usable_memory_bytes - self.weight_bytes) / self.kv_bytes_per_token

    def fits(self, sequences: float, context_tokens: float) -> bool:
        """Whether weights plus ``sequences`` KV caches of ``context_tokens`` each fit."""
        need = self.weight_bytes + sequences * float(self.kv_bytes(context_tokens))
        return need <= self.usable_memory_bytes

    @property
    def tdp_w(self) -> float:
        """TDP of the replica (all devices), watts."""
        return self.device.tdp_w.value * self.devices

    @property
    def idle_power_w(self) -> float:
        """Idle power of the replica (all devices), watts."""
        return self.device.idle_power_w.value * self.devices

    @property
    def collective_overhead_s(self) -> float:
        """Fixed per-step cost of splitting the replica over ``tp`` devices.

        The engine's ``tp_overhead_s_per_doubling`` per doubling, or with ``comm_model`` and an
        engine that gives ``allreduce_latency_s``, that latency per collective (two all-reduces
        per layer for tensor parallelism; one all-reduce and two all-to-alls for experts).
        """
        if self.tp < 2:
            return 0.0
        e = self.engine
        if self.comm_model and e.allreduce_latency_s is not None:
            per_layer = 3.0 if self.parallelism == "ep" and self.model.is_moe else 2.0
            return per_layer * self.model.num_layers.value * e.allreduce_latency_s.value
        return float(e.tp_overhead_s_per_doubling.value * np.log2(self.tp))

    def comm_s(self, tokens: ArrayLike) -> FloatArray:
        """Interconnect time of a step over ``tokens`` tokens (0 without ``comm_model``)."""
        t = np.asarray(tokens, dtype=np.float64)
        n = self.tp
        link = self.device.interconnect_bps
        if not self.comm_model or n < 2 or link is None:
            return np.zeros_like(t)
        m = self.model
        hidden = m.hidden_size.value * self.activation_bytes
        ring = 2.0 * (n - 1) / n
        if self.parallelism == "ep" and m.is_moe and m.experts_per_token is not None:
            k = m.experts_per_token.value
            per_token = m.num_layers.value * hidden * (ring + 2.0 * k * (n - 1) / n / n)
        else:
            per_token = 2.0 * m.num_layers.value * hidden * ring
        return t * per_token / link.value

    def check_fits(self) -> None:
        """Raise :class:`ConfigError` unless the weights and some KV cache fit in memory."""
        if self.kv_capacity_tokens < 4096:
            need = self.weight_bytes / 1e9
            have = self.device.memory_bytes.value * self.devices / 1e9
            raise ConfigError(
                f"{self.model.name} in {self.quant_name} needs {need:.0f} GB for weights; "
                f"{self.devices} x {self.device.name} has {have:.0f} GB and no room for a KV "
                "cache.",
                hint="Use a smaller quantization (fp8, int4) or a device with more memory.",
            )

    @property
    def quant_name(self) -> str:
        """Short name of the compute precision the quantization asks for."""
        return self.quant.compute

    # --- step costs --------------------------------------------------------------------------
    def weight_bytes_read(self, tokens: ArrayLike) -> FloatArray:
        """Weight bytes a step with ``tokens`` tokens reads (MoE: the experts it touches).

        Expert routing is taken as uniform: a step of T tokens touches an expected
        1 - (1 - k/E)^T of the E experts in every layer.
        """
        t = np.asarray(tokens, dtype=np.float64)
        m = self.model
        if m.expert_params is None or m.num_experts is None or m.experts_per_token is None:
            return np.full_like(t, self.weight_bytes)
        share = m.experts_per_token.value / m.num_experts.value
        touched = 1.0 - np.power(1.0 - share, np.maximum(t, 1.0))
        shared = m.total_params.value - m.expert_params.value
        params = shared + m.expert_params.value * touched
        return params * self.quant.weight_bytes_per_param.value

    def _cost(
        self,
        flops: FloatArray,
        bytes_moved: FloatArray,
        seqs: FloatArray,
        steps: FloatArray,
        tokens: FloatArray | None = None,
    ) -> StepCost:
        e, p = self.engine, self.power
        compute_s = flops / self.flops_per_s
        memory_s = bytes_moved / self.bandwidth_bps
        kernel_s = np.maximum(compute_s / e.mfu.value, memory_s / e.mbu.value)
        per_step_s = e.step_overhead_s.value + self.collective_overhead_s
        gpu_overhead_s = per_step_s * steps
        if tokens is not None:
            gpu_overhead_s = gpu_overhead_s + self.comm_s(tokens)
        wait_s = e.per_seq_overhead_s.value * seqs * steps
        activity = np.minimum(
            1.0,
            (p.compute_weight.value * compute_s + p.memory_weight.value * memory_s) / kernel_s,
        )
        dyn_w = (self.device.tdp_w.value - self.device.idle_power_w.value) * self.tp  # one stage
        energy = dyn_w * (
            activity * kernel_s
            + p.overhead_fraction.value * gpu_overhead_s
            + p.wait_fraction.value * wait_s
        )
        return StepCost(
            time_s=kernel_s + gpu_overhead_s + wait_s,
            dynamic_energy_j=energy,
            busy_s=kernel_s + gpu_overhead_s,
            compute_s=compute_s,
            memory_s=memory_s,
        )

    def prefill_chunks(self, input_tokens: ArrayLike) -> FloatArray:
        """Steps a prompt's prefill takes under chunked prefill (at least 1)."""
        n = np.asarray(input_tokens, dtype=np.float64)
        return np.maximum(np.ceil(n / self.engine.prefill_chunk_tokens.value), 1.0)

    def prefill(self, input_tokens: ArrayLike) -> StepCost:
        """Cost of prefilling one prompt of ``input_tokens`` tokens, all its chunks together.

        Causal attention costs 2 x layers x width x n^2 FLOPs in total however the prompt is
        chunked; every chunk reads the weights again.
        """
        n = np.asarray(input_tokens, dtype=np.float64)
        m = self.model
        chunks = self.prefill_chunks(n)
        flops = 2.0 * m.active_params * n + 2.0 * m.num_layers.value * m.attention_dim * n * n
        bytes_moved = chunks * self.weight_bytes_read(n / chunks) + self.kv_bytes(n)
        return self._cost(flops, bytes_moved, np.ones_like(n), chunks, n)

    def prefill_group(self, prompts: ArrayLike, input_tokens: ArrayLike) -> StepCost:
        """Cost of prefilling ``prompts`` prompts of ``input_tokens`` each in one step.

        An engine schedules the prompts waiting at a step together (up to its token budget):
        they share one read of the weights, one step overhead and one launch.
        """
        k = np.asarray(prompts, dtype=np.float64)
        n = np.asarray(input_tokens, dtype=np.float64)
        m = self.model
        flops = k * (2.0 * m.active_params * n + 2.0 * m.num_layers.value * m.attention_dim * n * n)
        bytes_moved = self.weight_bytes_read(k * n) + k * self.kv_bytes(n)
        return self._cost(flops, bytes_moved, k, np.ones_like(k), k * n)

    def decode_step(self, batch: ArrayLike, context_tokens: ArrayLike) -> StepCost:
        """Cost of one decode step of ``batch`` sequences holding ``context_tokens`` in total."""
        b = np.asarray(batch, dtype=np.float64)
        c = np.asarray(context_tokens, dtype=np.float64)
        m = self.model
        per_seq = np.divide(c, b, out=np.zeros_like(c * b), where=b > 0)
        attended = (
            b * np.asarray(m.kv_elements(per_seq), dtype=np.float64) / m.kv_elements_per_layer_token
        )
        flops = 2.0 * m.active_params * b + 4.0 * m.attention_dim * attended
        bytes_moved = self.weight_bytes_read(b) + b * self.kv_bytes(per_seq)
        return self._cost(flops, bytes_moved, b, np.ones_like(b), b)

    def decode_weight(self) -> float:
        """Work of one decode token relative to one prefill token (prefill token = 1).

        The marginal roofline cost of adding a token to a step: a prefill token costs its
        FLOPs; a decode token costs its FLOPs plus reading its KV cache
        (``REFERENCE_CONTEXT_TOKENS`` of context). Used to split a step's energy between the
        requests in it (docs/simulator.md#ground-truth).
        """
        flop_s = 2.0 * self.model.active_params / (self.flops_per_s * self.engine.mfu.value)
        kv_s = (
            REFERENCE_CONTEXT_TOKENS
            * self.kv_bytes_per_token
            / (self.bandwidth_bps * self.engine.mbu.value)
        )
        return float((flop_s + kv_s) / flop_s)


@dataclass(frozen=True)
class SteadyState:
    """A replica decoding a constant batch, prompts prefilled as requests complete.

    Attributes:
        step_s: Decode step time, seconds.
        tpot_s: Mean time per output token of one request, seconds (prefill stalls included).
        output_tokens_per_s: Output tokens per second of the replica.
        energy_per_output_token_j: Total energy (idle included) per output token, joules.
        power_w: Mean power of the replica, watts.
    """

    step_s: float
    tpot_s: float
    output_tokens_per_s: float
    energy_per_output_token_j: float
    power_w: float


def steady_state(
    perf: PerfModel, batch: float, input_tokens: float, output_tokens: float
) -> SteadyState:
    """Throughput, latency and energy per token of ``perf`` at a steady ``batch``.

    Each running sequence holds on average ``input_tokens + output_tokens / 2`` of context. Over
    ``output_tokens`` decode steps every one of the ``batch`` sequences finishes and is replaced:
    ``batch`` prompts are prefilled, the ones that arrived since the last step together
    (``batch / output_tokens`` per step, at least one, at most the engine's token budget), so a
    large batch of short answers shares its weight reads among several prompts.
    """
    micro = batch / perf.pp  # with pipeline stages, pp micro-batches are in flight
    ctx = micro * (input_tokens + output_tokens / 2.0)
    step = perf.decode_step(micro, ctx)
    budget = max(1.0, perf.engine.prefill_chunk_tokens.value / max(input_tokens, 1.0))
    per_group = float(np.clip(micro / output_tokens, 1.0, max(budget, 1.0)))
    groups = micro / per_group
    pre = perf.prefill_group(per_group, input_tokens)
    cycle_s = float(step.time_s) * output_tokens + float(pre.time_s) * groups
    cycle_dyn_j = (
        float(step.dynamic_energy_j) * output_tokens + float(pre.dynamic_energy_j) * groups
    )
    cycle_j = perf.pp * cycle_dyn_j + perf.idle_power_w * cycle_s
    tokens = perf.pp * micro * output_tokens
    return SteadyState(
        step_s=float(step.time_s),
        tpot_s=cycle_s / output_tokens,
        output_tokens_per_s=tokens / cycle_s,
        energy_per_output_token_j=cycle_j / tokens,
        power_w=cycle_j / cycle_s,
    )
