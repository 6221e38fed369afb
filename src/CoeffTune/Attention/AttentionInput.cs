using static TorchSharp.torch;

namespace CoeffTune.Attention;

/// <summary>
/// The arguments of one <see cref="MultiHeadAttention"/> call, as one value so that forward hooks see them
/// (and pre-hooks can replace them, e.g. <c>input with { Causal = true }</c>).
/// </summary>
/// <param name="X">Queries' source, (B, Nq, D).</param>
/// <param name="Context">Keys' and values' source for cross-attention, (B, Nk, Dc); null for self-attention.</param>
/// <param name="KeyPaddingMask">(B, Nk), nonzero/true where a key is a real token, zero/false where it is padding.</param>
/// <param name="Causal">When true, query i attends to keys 0..i only (the queries taken as the last Nq of the Nk positions).</param>
/// <param name="Cache">Keys and values of earlier decoding steps, extended or reused by this one; null for a full forward.</param>
public sealed record AttentionInput(Tensor X, Tensor? Context = null, Tensor? KeyPaddingMask = null, bool Causal = false, KeyValueCache? Cache = null);
