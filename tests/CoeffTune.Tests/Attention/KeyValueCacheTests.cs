using CoeffTune.Attention;
using CoeffTune.Methods.Coeff;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Attention;

/// <summary>
/// Incremental decoding with a <see cref="KeyValueCache"/> against one full forward of the same layer, which is itself
/// checked against <see cref="AttentionReference"/>. Maps: "fused" (no transform), "coeff" (Coeff-Tuning's one-step
/// recomputed attention), "coeff-explicit" (the same mixing through explicit maps).
/// </summary>
public class KeyValueCacheTests
{
    private const double Tolerance = 1e-10;   // float64 throughout

    private static MultiHeadAttention Layer(int seed, string maps, int? contextDim = null)
    {
        torch.manual_seed(seed);
        var attn = new MultiHeadAttention(16, 4, contextDim);
        if (maps != "fused")
        {
            var mixing = new CoeffMixing(4, new CoeffConfig()) { RecomputeMaps = maps == "coeff" };
            mixing.SetAlpha(randn(4, 4) * 0.5);
            attn.AttachMapTransform(mixing);
        }
        attn.to(ScalarType.Float64).eval();
        return attn;
    }

    private static Func<Tensor, Tensor>? Maps(MultiHeadAttention attn) =>
        attn.MapTransforms.SingleOrDefault() is CoeffMixing m ? AttentionReference.ResidualMixing(m.alpha) : null;

    /// <summary>Positions from..to-1 of a (B, N, ...) tensor.</summary>
    private static Tensor Steps(Tensor t, long from, long to) => t[TensorIndex.Colon, TensorIndex.Slice(from, to)];

    [Theory]
    [InlineData("fused")]
    [InlineData("coeff")]
    [InlineData("coeff-explicit")]
    public void Causal_self_attention_decoded_step_by_step_equals_one_full_forward(string maps)
    {
        using var scope = NewDisposeScope();
        var attn = Layer(1, maps);
        var x = randn(new long[] { 2, 7, 16 }, ScalarType.Float64);
        var keep = ones(2, 7, ScalarType.Bool);
        keep[0, 2] = false;                       // padding inside the sequences: every query still sees key 0
        keep[1, 4] = false;
        var full = attn.forward(x, keyPaddingMask: keep, causal: true);
        var reference = AttentionReference.Output(attn, x, keep: keep, causal: true, maps: Maps(attn));
        Assert.True(MaxAbsDiff(full, reference) <= Tolerance, $"full forward vs reference {MaxAbsDiff(full, reference):E2}");

        // One token per step, and a three-token prompt then one token per step: the mask covers cached and new keys.
        foreach (var firstStep in new long[] { 1, 3 })
        {
            using var cache = new KeyValueCache();
            var outputs = new List<Tensor>();
            for (long start = 0, end = firstStep; start < 7; start = end, end = start + 1)
            {
                outputs.Add(attn.forward(Steps(x, start, end), keyPaddingMask: Steps(keep, 0, end), causal: true, cache: cache));
                Assert.Equal(end, cache.For(attn)!.Length);
            }
            var incremental = cat(outputs, 1);
            Assert.True(MaxAbsDiff(incremental, full) <= Tolerance, $"first step of {firstStep}: incremental vs full {MaxAbsDiff(incremental, full):E2}");
            Assert.Equal(1, cache.Count);
            Assert.False(cache.For(attn)!.FromContext);
        }
    }

    [Theory]
    [InlineData("fused")]
    [InlineData("coeff")]
    [InlineData("coeff-explicit")]
    public void Cross_attention_computes_the_context_keys_once_and_honours_its_padding_on_every_step(string maps)
    {
        using var scope = NewDisposeScope();
        var attn = Layer(2, maps, contextDim: 12);
        var x = randn(new long[] { 2, 6, 16 }, ScalarType.Float64);
        var context = randn(new long[] { 2, 9, 12 }, ScalarType.Float64);
        var keep = ones(2, 9, ScalarType.Bool);
        keep[0, TensorIndex.Slice(6)] = false;
        var full = attn.forward(x, context, keep);
        var reference = AttentionReference.Output(attn, x, context, keep, maps: Maps(attn));
        Assert.True(MaxAbsDiff(full, reference) <= Tolerance, $"full forward vs reference {MaxAbsDiff(full, reference):E2}");
        // The padding matters: without it the outputs are far off.
        Assert.True(MaxAbsDiff(full, AttentionReference.Output(attn, x, context, maps: Maps(attn))) > 1e-3);

        int keyProjections = 0;
        var counting = attn.key.register_forward_hook((_, _, y) => { keyProjections++; return y; });
        // Padded context tokens changed wildly: they must get no weight on any step.
        var noisy = context.clone();
        noisy[0, TensorIndex.Slice(6)] = randn(3, 12, ScalarType.Float64) * 100;
        using var cache = new KeyValueCache();
        var outputs = new List<Tensor>();
        for (long t = 0; t < 6; t++)
        {
            var step = Steps(x, t, t + 1);
            outputs.Add(t switch
            {
                0 => attn.forward(step, noisy, keep, cache: cache),          // keys, values and mask from the context
                1 => attn.forward(step, noisy, cache: cache),                // the context again: not read; the kept mask applies
                _ => attn.forward(step, cache: cache),                       // no context, no mask: both from the cache
            });
        }
        counting.remove();
        Assert.Equal(1, keyProjections);
        var entry = cache.For(attn)!;
        Assert.True(entry.FromContext);
        Assert.Equal(9, entry.Length);
        var incremental = cat(outputs, 1);
        Assert.True(MaxAbsDiff(incremental, full) <= Tolerance, $"incremental vs full {MaxAbsDiff(incremental, full):E2}");

        // A mask passed on a later step replaces the kept one for that step.
        var fewer = keep.clone();
        fewer[1, TensorIndex.Slice(7)] = false;
        var withFewer = attn.forward(Steps(x, 0, 1), keyPaddingMask: fewer, cache: cache);
        var expected = AttentionReference.Output(attn, Steps(x, 0, 1), context, fewer, maps: Maps(attn));
        Assert.True(MaxAbsDiff(withFewer, expected) <= Tolerance);
    }

    /// <summary>A decoder block's two attentions, self (causal) then cross, sharing one cache as a BART decoder layer would.</summary>
    [Theory]
    [InlineData("fused")]
    [InlineData("coeff")]
    public void One_cache_serves_a_decoder_blocks_self_and_cross_attention(string maps)
    {
        using var scope = NewDisposeScope();
        var self = Layer(3, maps);
        var cross = Layer(4, maps, contextDim: 12);
        var x = randn(new long[] { 3, 5, 16 }, ScalarType.Float64);
        var encoded = randn(new long[] { 3, 8, 12 }, ScalarType.Float64);
        var keep = ones(3, 8, ScalarType.Bool);
        keep[1, TensorIndex.Slice(5)] = false;
        keep[2, TensorIndex.Slice(2)] = false;
        Tensor Block(Tensor input, KeyValueCache? cache, Tensor? selfMask)
        {
            var h = input + self.forward(input, keyPaddingMask: selfMask, causal: true, cache: cache);
            return h + cross.forward(h, encoded, keep, cache: cache);
        }
        var full = Block(x, null, null);
        using var cache = new KeyValueCache();
        var incremental = cat(Enumerable.Range(0, 5).Select(t => Block(Steps(x, t, t + 1), cache, null)).ToList(), 1);
        Assert.True(MaxAbsDiff(incremental, full) <= Tolerance, $"incremental vs full {MaxAbsDiff(incremental, full):E2}");
        Assert.Equal(2, cache.Count);
        Assert.Equal((5L, 8L), (cache.For(self)!.Length, cache.For(cross)!.Length));
        cache.Clear();
        Assert.Equal(0, cache.Count);
        Assert.Null(cache.For(self));
    }

    [Fact]
    public void Misuse_is_refused_with_the_reason()
    {
        using var scope = NewDisposeScope();
        var self = Layer(5, "fused");
        var cross = Layer(6, "fused", contextDim: 12);
        var x = randn(new long[] { 2, 3, 16 }, ScalarType.Float64);
        var context = randn(new long[] { 2, 4, 12 }, ScalarType.Float64);
        using var cache = new KeyValueCache();
        self.forward(x, causal: true, cache: cache);
        cross.forward(x, context, cache: cache);
        // Another batch without clearing the cache.
        var other = randn(new long[] { 3, 1, 16 }, ScalarType.Float64);
        Assert.Contains("clear the cache", Assert.Throws<InvalidOperationException>(() => self.forward(other, causal: true, cache: cache)).Message);
        Assert.Contains("clear the cache", Assert.Throws<InvalidOperationException>(() => cross.forward(other, randn(new long[] { 3, 4, 12 }, ScalarType.Float64), cache: cache)).Message);
        // A context passed to a layer whose cache holds self-attention keys.
        var selfWithContext = new MultiHeadAttention(16, 4).to(ScalarType.Float64);
        selfWithContext.forward(x, cache: cache);
        Assert.Contains("self-attention", Assert.Throws<InvalidOperationException>(() => selfWithContext.forward(x, x, cache: cache)).Message);
        // A self-attention step's mask must cover the cached keys too.
        var e = Assert.Throws<ArgumentException>(() => self.forward(Steps(x, 0, 1), keyPaddingMask: ones(2, 1, ScalarType.Bool), causal: true, cache: cache));
        Assert.Contains("4 keys", e.Message);
    }
}
