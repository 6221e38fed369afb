using CoeffTune.Attention;
using static TorchSharp.torch;

namespace CoeffTune.Generation;

/// <summary>
/// What generation needs of an encoder–decoder model: encode the source once, then give the next-token logits of
/// decoder positions, either all of them (no cache) or only the new ones, with earlier positions' keys and values
/// in a <see cref="KeyValueCache"/> (self-attention keys grow by step; cross-attention keys are computed from the
/// encoder's states on the first cached step and reused).
/// </summary>
public interface ISeq2SeqModel
{
    /// <summary>The token every decoder sequence starts with.</summary>
    int DecoderStartTokenId { get; }
    int EosTokenId { get; }
    /// <summary>Fills finished sequences in a batch.</summary>
    int PadTokenId { get; }
    /// <summary>A token forced as the first generated one, or null.</summary>
    int? ForcedBosTokenId { get; }
    int VocabSize { get; }

    /// <summary>Encoder states (B, S, D) of source ids (B, S); <paramref name="attentionMask"/> (B, S) is 1 on real tokens, 0 on padding.</summary>
    Tensor Encode(Tensor inputIds, Tensor? attentionMask);

    /// <summary>
    /// Logits (B, T, V) of decoder ids (B, T). Without a cache the ids are the whole decoder sequence from its start
    /// token; with one, they are the positions after the cached ones.
    /// </summary>
    Tensor DecodeLogits(Tensor decoderIds, Tensor encoderStates, Tensor? encoderMask, KeyValueCache? cache = null);
}
