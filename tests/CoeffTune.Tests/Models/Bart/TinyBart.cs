using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Models.Bart;

/// <summary>Small random BART models and padded sources, reproducible from a seed.</summary>
internal static class TinyBart
{
    /// <summary>Different head counts and FFN widths in encoder and decoder; weights large enough for decisive argmaxes.</summary>
    public static BartConfig Shape => new()
    {
        VocabSize = 40, DModel = 24, EncoderLayers = 2, DecoderLayers = 2, EncoderAttentionHeads = 4, DecoderAttentionHeads = 3,
        EncoderFfnDim = 48, DecoderFfnDim = 40, MaxPositionEmbeddings = 32, InitStd = 0.3, Dropout = 0.1,
    };

    public static BartForConditionalGeneration Model(int seed = 0, BartConfig? config = null)
    {
        torch.manual_seed(seed);
        var m = new BartForConditionalGeneration(config ?? Shape);
        m.eval();
        return m;
    }

    /// <summary>Three sources of 7, 4 and 5 tokens (bos ... eos), right-padded with pad id 1; mask 1 on real tokens.</summary>
    public static (Tensor Ids, Tensor Mask) Sources()
    {
        long[][] rows = { new long[] { 0, 5, 17, 9, 30, 11, 2 }, new long[] { 0, 33, 4, 2 }, new long[] { 0, 21, 8, 12, 2 } };
        return Pad(rows);
    }

    public static (Tensor Ids, Tensor Mask) Pad(long[][] rows)
    {
        int n = rows.Max(r => r.Length);
        var ids = new long[rows.Length * n];
        var mask = new long[rows.Length * n];
        for (int b = 0; b < rows.Length; b++)
            for (int i = 0; i < n; i++)
            {
                ids[b * n + i] = i < rows[b].Length ? rows[b][i] : 1;
                mask[b * n + i] = i < rows[b].Length ? 1 : 0;
            }
        return (tensor(ids, new long[] { rows.Length, n }), tensor(mask, new long[] { rows.Length, n }));
    }
}
