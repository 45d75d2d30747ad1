"""Contrastive representation distillation (CRD): the one baseline that keeps state across batches."""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_positive
from .base import TransferLoss, _check_dim, _check_fraction, _check_indices, _NORM_EPS, _normalize_rows

_CRD_EPS = 1e-7  # eps of the reference's NCE ratios


class CRDLoss(TransferLoss):
    r"""Contrastive representation distillation (Tian, Krishnan & Isola, ICLR 2020), as in the benchmark.

    Student and teacher features are embedded by learned linear maps into
    :math:`\mathbb{R}^{m}` (``embed_dim``, 128) and scaled to unit norm,
    :math:`v^S_i = \operatorname{normalize}(W_S f^S_i + b_S)`, :math:`v^T_i` likewise. Two
    memories hold one unit vector per training sample: :math:`M^S` (student embeddings) and
    :math:`M^T` (teacher embeddings), both (N, m). For a batch sample at training-set position
    :math:`p_i` and K indices :math:`q_{i1..iK}` drawn uniformly from :math:`\{0..N-1\}`
    (``num_negatives``), with :math:`q_{i0} = p_i` the positive,

    .. math::

        P^S_{ik} = \frac{\exp(\langle M^T_{q_{ik}}, v^S_i \rangle / \tau)}{Z^S}, \qquad
        P^T_{ik} = \frac{\exp(\langle M^S_{q_{ik}}, v^T_i \rangle / \tau)}{Z^T},

    the student's embedding contrasted against teacher memories and the teacher's against
    student memories. Each side has the NCE loss of the paper (its eq. 18) with noise
    probability :math:`1/N` and :math:`c = K / N`:

    .. math::

        L = -\frac{1}{n} \sum_{i=1}^{n} \Big[ \log \frac{P_{i0}}{P_{i0} + c + \epsilon}
            + \sum_{k=1}^{K} \log \frac{c}{P_{ik} + c + \epsilon} \Big],
        \qquad L_{CRD} = L^S + L^T,

    :math:`\epsilon = 10^{-7}`. The normalisation constants are estimated once, at the first
    call, as :math:`Z = N \cdot \operatorname{mean}_{i,k} \exp(\langle\cdot,\cdot\rangle/\tau)`
    over that batch's (n, K + 1) scores, then kept fixed. After the scores are computed the
    memories of the batch samples move towards the new embeddings and are re-normalised:
    :math:`M_{p_i} \leftarrow \operatorname{normalize}(\mu M_{p_i} + (1 - \mu) v_i)`
    (``momentum`` :math:`\mu`, no gradient).

    Parameters
    ----------
    student_dim, teacher_dim : int
        Feature widths of the student (n, d_S) and teacher (n, d_T).
    num_samples : int
        Size N of the training set: ``indices`` run over ``0 .. N - 1``.
    embed_dim : int, default 128
    num_negatives : int, default 16384
        K. Drawn with replacement, so K may exceed N (on a small data set each sample then
        appears many times among the negatives, as in the reference's sampler).
    temperature : float, default 0.07
    momentum : float, default 0.5
        :math:`\mu` in [0, 1).
    seed : int, optional
        Seed of the negative sampling. ``None`` draws one from torch's global generator at
        construction (so ``torch.manual_seed`` before building the loss fixes it, as it fixes
        the embeddings and the initial memories).

    Notes
    -----
    Call as ``loss(student, teacher, indices=idx)``, ``idx`` a LongTensor (n,) of the batch
    samples' distinct positions in the training set (``needs_indices``); the loss raises
    ``ValueError`` without them. The embeddings are submodules (``embed_student``,
    ``embed_teacher``): their parameters are in ``loss.parameters()`` and must reach the
    optimiser (the benchmark trains both). The memories (``student_memory``,
    ``teacher_memory``, initialised uniformly in :math:`[-s, s]`, :math:`s = 1/\sqrt{m/3}`,
    as in the reference), the two constants (``normalizer``, :math:`[Z^S, Z^T]`, -1 until set)
    and the sampling state (``sampling``: seed and number of calls) are buffers, so
    ``state_dict()`` holds everything and a resumed run draws the same negatives. Negatives
    are drawn on the features' device by a generator re-seeded from (seed, call number) at
    every call: the same seed on the same kind of device gives the same run.

    Differences from the benchmark (RepDistiller ``crd/``), deliberate:

    * negatives: its training script draws each sample's K negatives without replacement
      from the samples of *other classes* (the data set's ``contrast_idx``, mode "exact"),
      which uses labels; here they are drawn uniformly from all N samples with replacement,
      the positive not excluded, which is what its memory module does when no
      ``contrast_idx`` is given. This keeps CRD class-unaware, as the paper's objective is.
    * the scores are computed in the loss's precision (float32) with autocast off and in the
      log domain (:math:`\log P = s/\tau - \log Z`), which gives the same values without
      overflow of :math:`e^{1/\tau}` in half precision. When the (n, N) score matrix is no
      larger than the (n, K + 1, m) gathered memories, all N scores come from one matrix
      product; when K + 1 > N the sums over the K draws are taken over the N memory rows,
      each weighted by how often it was drawn (same values, fewer operations on small data
      sets).
    * the memory update is out of place (a new buffer tensor), so autograd may keep the old
      memory for the backward pass.

    The benchmark's objective is ``1 * CE + 0.8 * L_CRD`` (``-r 1 -a 0 -b 0.8``), hence
    ``default_weight = 0.8`` and ``ce_weight = 1``; class-unaware training uses
    ``0.8 * L_CRD``. The benchmark applies CRD to the pooled penultimate features, as here.
    """

    uses = "features"
    default_weight = 0.8
    min_samples = 1
    needs_indices = True
    relational = True  # it contrasts samples with each other: under torchrun, the global batch

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_samples: int,
        embed_dim: int = 128,
        num_negatives: int = 16384,
        temperature: float = 0.07,
        momentum: float = 0.5,
        seed: int | None = None,
    ):
        super().__init__()
        self.student_dim = _check_dim(student_dim, "student_dim")
        self.teacher_dim = _check_dim(teacher_dim, "teacher_dim")
        self.num_samples = _check_dim(num_samples, "num_samples")
        self.embed_dim = _check_dim(embed_dim, "embed_dim")
        self.num_negatives = _check_dim(num_negatives, "num_negatives")
        self.temperature = check_positive(temperature, "temperature")
        self.momentum = _check_fraction(momentum, "momentum")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be None or a non-negative int, got {type(seed).__name__}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be None or a non-negative int, got {seed}")
        self.embed_student = nn.Linear(self.student_dim, self.embed_dim)
        self.embed_teacher = nn.Linear(self.teacher_dim, self.embed_dim)
        stdv = 1.0 / math.sqrt(self.embed_dim / 3)
        for name in ("student_memory", "teacher_memory"):
            self.register_buffer(name, torch.rand(self.num_samples, self.embed_dim) * (2 * stdv) - stdv)
        self.register_buffer("normalizer", torch.full((2,), -1.0, dtype=torch.float64))
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        self.register_buffer("sampling", torch.tensor([seed, 0], dtype=torch.int64))

    def extra_repr(self) -> str:
        return (
            f"student_dim={self.student_dim}, teacher_dim={self.teacher_dim}, num_samples={self.num_samples}, "
            f"embed_dim={self.embed_dim}, num_negatives={self.num_negatives}, "
            f"temperature={self.temperature}, momentum={self.momentum}"
        )

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor, indices=None) -> torch.Tensor:
        # Called by TransferLoss.forward on the global batch: under torchrun every process
        # contrasts the whole global batch and updates its memories with it, so the memories stay
        # identical on every process (CRD keeps the default _own_references_loss).
        if student.shape[1] != self.student_dim or teacher.shape[1] != self.teacher_dim:
            raise ValueError(
                f"CRDLoss expects student width student_dim={self.student_dim} and teacher width "
                f"teacher_dim={self.teacher_dim}, got {student.shape[1]} and {teacher.shape[1]}"
            )
        return self._contrast(student, teacher, self._positions(indices, student.shape[0], student.device))

    def _positions(self, indices, n: int, device) -> torch.Tensor:
        """``indices`` checked and as a LongTensor (n,) on ``device``: distinct positions in [0, N)."""
        if indices is None:
            raise ValueError(
                "CRDLoss needs indices: call loss(student, teacher, indices=idx) with idx the (n,) "
                "positions of the batch samples in the training set"
            )
        idx = _check_indices(indices, n).to(device=device, dtype=torch.long)
        ordered = idx.sort().values
        # One host sync for both checks: a bad position would index the memory out of bounds,
        # a repeated one would make the memory update depend on write order.
        bad = (ordered[0] < 0) | (ordered[-1] >= self.num_samples) | (ordered[1:] == ordered[:-1]).any()
        if bool(bad):
            raise ValueError(
                f"indices must be distinct positions in [0, num_samples={self.num_samples}), got values in "
                f"[{int(ordered[0])}, {int(ordered[-1])}] with {n - int(torch.unique(idx).numel())} repeated"
            )
        return idx

    def _draw(self, idx: torch.Tensor) -> torch.Tensor:
        """(n, K) negatives: uniform draws from the N positions, with replacement."""
        seed, calls = (int(v) for v in self.sampling.tolist())
        # A fresh generator per call, seeded from the buffers: nothing outside state_dict().
        gen = torch.Generator(device=idx.device)
        gen.manual_seed((seed * 1_000_003 + calls) % 2**63)
        self.sampling[1] += 1
        return torch.randint(0, self.num_samples, (idx.shape[0], self.num_negatives), generator=gen, device=idx.device)

    def _counts(self, negatives: torch.Tensor) -> torch.Tensor:
        """(n, N + 1) draw counts: 1 for the positive (column 0), then how often each of the
        N memory rows is among a sample's negatives."""
        n, size = negatives.shape[0], self.num_samples
        counts = torch.zeros(n, size + 1, dtype=torch.int32, device=negatives.device)
        counts[:, 0] = 1
        ones = torch.ones((), dtype=torch.int32, device=negatives.device).expand(negatives.shape)
        return counts.scatter_add_(1, negatives + 1, ones)  # column 1 + q for memory row q

    @staticmethod
    def _scores(memory: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, negatives, counted: bool) -> torch.Tensor:
        """Inner products ``<memory[q], v[i]>``, not yet divided by the temperature.

        ``counted``: (n, N + 1), the positive then every memory row (to be weighted by
        :meth:`_counts`); otherwise (n, K + 1), the positive then the K draws.
        """
        if counted:
            full = v @ memory.T
            return torch.cat([full.gather(1, idx.unsqueeze(1)), full], dim=1)
        rows = torch.cat([idx.unsqueeze(1), negatives], dim=1)
        if memory.shape[0] <= rows.shape[1] * memory.shape[1]:
            # The (n, N) product is no larger than the gathered (n, K + 1, m) memories.
            return (v @ memory.T).gather(1, rows)
        return torch.bmm(memory[rows], v.unsqueeze(2)).squeeze(2)

    def _side(self, scores: torch.Tensor, counts, side: int, unset: bool) -> torch.Tensor:
        """NCE loss of one side from :meth:`_scores` divided by tau, with :meth:`_counts` or None."""
        n = scores.shape[0]
        if unset:
            # Z = N * mean of exp(score) over the n (K + 1) draws, by logsumexp (no overflow).
            flat = scores.detach().double()
            if counts is not None:
                flat = flat + counts.double().log()
            log_z = torch.logsumexp(flat.flatten(), 0) - math.log(n * (self.num_negatives + 1))
            self.normalizer[side] = torch.exp(log_z) * self.num_samples
        log_p = scores - torch.log(self.normalizer[side]).to(scores.dtype)
        c = self.num_negatives / self.num_samples
        log_c_eps = torch.tensor(math.log(c + _CRD_EPS), dtype=scores.dtype, device=scores.device)
        # log(P / (P + c + eps)) = log P - logaddexp(log P, log(c + eps)); likewise for log(c / ...).
        log_denominator = torch.logaddexp(log_p, log_c_eps)
        positive = log_p[:, 0] - log_denominator[:, 0]
        negative = math.log(c) - log_denominator[:, 1:]
        if counts is not None:
            negative = negative * counts[:, 1:]
        return -(positive.sum() + negative.sum()) / n

    def _contrast(self, student: torch.Tensor, teacher: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # The loss's own precision (float32 unless the module was converted), never autocast's:
        # exp(1 / 0.07) overflows half precision.
        dtype = self.embed_student.weight.dtype
        with torch.autocast(device_type=student.device.type, enabled=False):
            v_s = _normalize_rows(self.embed_student(student.to(dtype)))
            v_t = _normalize_rows(self.embed_teacher(teacher.to(dtype)))
            negatives = self._draw(idx)
            # With more draws than memory rows, sum over the N rows weighted by their counts
            # rather than over the K draws: same value, (n, N) instead of (n, K) entries.
            counted = self.num_samples < self.num_negatives + 1
            counts = self._counts(negatives).to(dtype) if counted else None
            unset = [z < 0 for z in self.normalizer.tolist()]
            loss = 0.0
            # Student embeddings against teacher memories (side 0), and the converse (side 1).
            for side, (v, memory) in enumerate(((v_s, self.teacher_memory), (v_t, self.student_memory))):
                scores = self._scores(memory.to(dtype), v, idx, negatives, counted)
                loss = loss + self._side(scores / self.temperature, counts, side, unset[side])
            with torch.no_grad():
                self.student_memory = self._updated(self.student_memory, v_s, idx)
                self.teacher_memory = self._updated(self.teacher_memory, v_t, idx)
        return loss

    def _updated(self, memory: torch.Tensor, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        rows = memory[idx] * self.momentum + v.detach().to(memory.dtype) * (1.0 - self.momentum)
        rows = rows / torch.linalg.vector_norm(rows, dim=1, keepdim=True).clamp_min(_NORM_EPS)
        return memory.index_copy(0, idx, rows)

