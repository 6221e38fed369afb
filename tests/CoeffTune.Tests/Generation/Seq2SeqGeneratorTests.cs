using CoeffTune.Attention;
using CoeffTune.Generation;
using CoeffTune.Methods.Coeff;
using CoeffTune.Tests.Models.Bart;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Generation;

public sealed class Seq2SeqGeneratorTests(ITestOutputHelper output)
{
    [Fact]
    public void Cached_and_uncached_greedy_decoding_give_the_same_tokens_and_logits()
    {
        using var model = TinyBart.Model(1);
        // With Coeff-Tuning's alpha on every attention (nonzero), the cached step must mix the current rows of the maps too.
        var coeff = CoeffTuning.Apply(model);
        torch.manual_seed(7);
        foreach (var m in coeff.Values) m.SetAlpha(randn(m.alpha.shape) * 0.3);
        model.eval();
        var (ids, mask) = TinyBart.Sources();
        var options = new GenerationOptions { MaxNewTokens = 12, ReturnLogits = true };
        using var cached = Seq2SeqGenerator.Generate(model, ids, mask, options);
        using var uncached = Seq2SeqGenerator.Generate(model, ids, mask, options with { UseCache = false });
        Assert.Equal(uncached.Sequences, cached.Sequences);
        double diff = TestUtil.MaxAbsDiff(cached.StepLogits!, uncached.StepLogits!);
        output.WriteLine($"max |logit diff| {diff:0.###e+0} over {cached.StepLogits!.numel()} values; sequences: " +
            string.Join(" | ", cached.Sequences.Select(s => string.Join(",", s))));
        Assert.True(diff <= 1e-5, $"cached and uncached logits differ by {diff}");
        Assert.Equal(new long[] { 3, 12, 40 }, cached.StepLogits!.shape);
    }

    [Fact]
    public void Cached_and_uncached_beam_search_give_the_same_sequences()
    {
        using var model = TinyBart.Model(2);
        var (ids, mask) = TinyBart.Sources();
        var options = new GenerationOptions { MaxNewTokens = 10, NumBeams = 3 };
        using var cached = Seq2SeqGenerator.Generate(model, ids, mask, options);
        using var uncached = Seq2SeqGenerator.Generate(model, ids, mask, options with { UseCache = false });
        Assert.Equal(uncached.Sequences, cached.Sequences);
        for (int i = 0; i < 3; i++) Assert.Equal(uncached.Scores[i], cached.Scores[i], 1e-5);
    }

    [Fact]
    public void Beam_search_with_one_beam_is_greedy_decoding()
    {
        foreach (int seed in new[] { 1, 2, 3 })
        {
            using var model = TinyBart.Model(seed);
            var (ids, mask) = TinyBart.Sources();
            using var greedy = Seq2SeqGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 9 });
            using var beam = Seq2SeqGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 9, NumBeams = 1 });
            Assert.Equal(greedy.Sequences, beam.Sequences);
        }
    }

    [Fact]
    public void Padding_in_a_batch_gives_what_each_source_gives_alone()
    {
        using var model = TinyBart.Model(4);
        var (ids, mask) = TinyBart.Sources();
        foreach (var options in new[] { new GenerationOptions { MaxNewTokens = 8 }, new GenerationOptions { MaxNewTokens = 8, NumBeams = 3 } })
        {
            using var batch = Seq2SeqGenerator.Generate(model, ids, mask, options);
            for (int b = 0; b < 3; b++)
            {
                long n = mask[b].sum().ToInt64();
                using var one = ids[b].narrow(0, 0, n).unsqueeze(0);
                using var alone = Seq2SeqGenerator.Generate(model, one, null, options);
                Assert.Equal(alone.Sequences[0], batch.Sequences[b]);
                Assert.Equal(alone.Scores[0], batch.Scores[b], 1e-4);
            }
        }
    }

    // A model whose next-token distribution is a table keyed by the tokens generated so far, so beam search can be
    // followed by hand. Tokens: 0 pad, 1 eos, 2 decoder start, 3 "a", 4 "b".
    //   after []      : a 0.5, b 0.4, eos 0.1
    //   after [a]     : a 0.4, b 0.1, eos 0.5
    //   anything else : eos 0.9, a 0.05, b 0.05
    private sealed class TableModel : ISeq2SeqModel
    {
        public int DecoderStartTokenId => 2;
        public int EosTokenId => 1;
        public int PadTokenId => 0;
        public int? ForcedBosTokenId { get; init; }
        public int VocabSize => 5;
        public Tensor Encode(Tensor inputIds, Tensor? attentionMask) => zeros(inputIds.shape[0], inputIds.shape[1], 1);

        public Tensor DecodeLogits(Tensor decoderIds, Tensor encoderStates, Tensor? encoderMask, KeyValueCache? cache = null)
        {
            long n = decoderIds.shape[0], t = decoderIds.shape[1];
            var rows = new float[n * t * 5];
            for (int i = 0; i < n; i++)
            {
                var generated = Enumerable.Range(1, (int)t - 1).Select(j => decoderIds[i, j].ToInt64()).ToArray();
                double[] p = generated switch
                {
                    [] => new[] { 0, 0.1, 0, 0.5, 0.4 },
                    [3] => new[] { 0, 0.5, 0, 0.4, 0.1 },
                    _ => new[] { 0, 0.9, 0, 0.05, 0.05 },
                };
                for (int v = 0; v < 5; v++) rows[(i * t + t - 1) * 5 + v] = (float)Math.Log(p[v]);
            }
            return tensor(rows, new[] { n, t, 5L });
        }
    }

    [Fact]
    public void Beam_search_finds_the_better_sequence_greedy_misses()
    {
        // Greedy: a (0.5), then eos (0.5): [a, eos], log p = -1.386.
        // Two beams, length penalty 1. Step 1 (length 1): top 4 of beam 0 are a -0.693, b -0.916, eos -2.303 (rank 2:
        // not among the top 2, so not a hypothesis), and the dead beam's a at -1e9; running: [a], [b].
        // Step 2 (length 2): [b, eos] = ln 0.4 + ln 0.9 = -1.0217 (rank 0 -> hypothesis -1.0217 / 2 = -0.5108),
        // [a, eos] = ln 0.5 + ln 0.5 = -1.3863 (rank 1 -> hypothesis -0.6931), [a, a] = -1.6094 and [a, b] = -2.9957
        // run on. Two hypotheses for two beams; the best running beam at its length, -1.6094 / 2 = -0.8047, cannot beat
        // the worst hypothesis, -0.6931: done. Best: [b, eos], -0.5108.
        var model = new TableModel();
        using var src = zeros(1, 3, ScalarType.Int64);
        using var greedy = Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 5, UseCache = false });
        Assert.Equal(new[] { 3, 1 }, greedy.Sequences[0]);
        Assert.Equal(Math.Log(0.5) + Math.Log(0.5), greedy.Scores[0], 1e-6);

        using var beam = Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 5, NumBeams = 2, UseCache = false });
        Assert.Equal(new[] { 4, 1 }, beam.Sequences[0]);
        Assert.Equal((Math.Log(0.4) + Math.Log(0.9)) / 2, beam.Scores[0], 1e-6);
    }

    [Fact]
    public void A_length_penalty_above_one_lets_beam_search_prefer_the_longer_hypothesis()
    {
        // Length penalty 2, stopping "never", at most 3 tokens. After step 2 the hypotheses are [b, eos] -1.0217 / 4 =
        // -0.2554 and [a, eos] -1.3863 / 4 = -0.3466; the best running beam [a, a] (-1.6094) could still reach
        // -1.6094 / 3^2 = -0.1788 > -0.3466, so search goes on. Step 3 (length 3): [a, a, eos] = -1.6094 + ln 0.9 =
        // -1.7148 (rank 0) scores -1.7148 / 9 = -0.1905 and replaces [a, eos]; [a, b, eos] = ln 0.5 + ln 0.1 + ln 0.9
        // = -3.1011 (rank 1) scores -0.3446, below the worst kept (-0.2554): not kept. The limit is reached: best
        // [a, a, eos] at -0.1905, which beats [b, eos] (-0.2554) only because of the penalty.
        var model = new TableModel();
        using var src = zeros(1, 3, ScalarType.Int64);
        var options = new GenerationOptions { MaxNewTokens = 3, NumBeams = 2, LengthPenalty = 2, Stopping = BeamStopping.Never, UseCache = false };
        using var beam = Seq2SeqGenerator.Generate(model, src, null, options);
        Assert.Equal(new[] { 3, 3, 1 }, beam.Sequences[0]);
        Assert.Equal((Math.Log(0.5) + Math.Log(0.4) + Math.Log(0.9)) / 9, beam.Scores[0], 1e-6);
        // With the default stopping rule the search stops after step 2 (-1.6094 / 2^2 = -0.4024 < -0.3466) with [b, eos].
        using var heuristic = Seq2SeqGenerator.Generate(model, src, null, options with { Stopping = BeamStopping.Heuristic });
        Assert.Equal(new[] { 4, 1 }, heuristic.Sequences[0]);
        Assert.Equal((Math.Log(0.4) + Math.Log(0.9)) / 4, heuristic.Scores[0], 1e-6);
    }

    [Fact]
    public void A_forced_first_token_is_taken_whatever_its_probability()
    {
        // b (0.4) is forced over a (0.5); after [b], eos (0.9). The forced step adds nothing to the score (every other
        // token is barred, so b's log-probability is 0), as with transformers' forced BOS.
        var model = new TableModel { ForcedBosTokenId = 4 };
        using var src = zeros(1, 3, ScalarType.Int64);
        using var greedy = Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 5, UseCache = false });
        Assert.Equal(new[] { 4, 1 }, greedy.Sequences[0]);
        Assert.Equal(Math.Log(0.9), greedy.Scores[0], 6);
        using var beam = Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 5, NumBeams = 2, UseCache = false });
        Assert.Equal(new[] { 4, 1 }, beam.Sequences[0]);
    }

    [Fact]
    public void Min_new_tokens_holds_eos_back_and_max_new_tokens_caps_the_length()
    {
        var model = new TableModel();
        using var src = zeros(1, 3, ScalarType.Int64);
        // EOS barred for two steps: a, then a (0.4) instead of eos (0.5), then eos (0.9).
        using var r = Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 4, MinNewTokens = 2, UseCache = false });
        Assert.Equal(new[] { 3, 3, 1 }, r.Sequences[0]);
        using var capped = Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 2, MinNewTokens = 2, UseCache = false });
        Assert.Equal(new[] { 3, 3 }, capped.Sequences[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => Seq2SeqGenerator.Generate(model, src, null, new GenerationOptions { MaxNewTokens = 0 }));
    }
}
