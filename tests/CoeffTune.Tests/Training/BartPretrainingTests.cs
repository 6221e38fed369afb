using CoeffTune.Text;
using CoeffTune.Training;

namespace CoeffTune.Tests.Training;

public sealed class BartPretrainingTests
{
    private static readonly int[][] Sentences =
    [
        Enumerable.Range(10, 10).ToArray(), Enumerable.Range(20, 10).ToArray(), Enumerable.Range(30, 10).ToArray(),
    ];
    private const int Mask = 99;

    [Fact]
    public void Corruption_masks_thirty_percent_of_the_tokens_in_spans_and_the_target_is_the_original_text()
    {
        for (int seed = 0; seed < 200; seed++)
        {
            var e = BartPretraining.Corrupt(Sentences, new Random(seed), Mask, bos: 0, eos: 2);
            Assert.Equal([0, .. Enumerable.Range(10, 30), 2], e.Target);
            Assert.Equal(0, e.Source[0]);
            Assert.Equal(2, e.Source[^1]);
            var kept = e.Source[1..^1].Where(t => t != Mask).ToList();
            // round(0.3 * 30) = 9 tokens are masked; the 21 others stay, each once.
            Assert.Equal(21, kept.Count);
            Assert.Equal(kept.Count, kept.Distinct().Count());
            Assert.All(kept, t => Assert.InRange(t, 10, 39));
            // Each run of masked tokens is one <mask> (never two in a row), so there are fewer masks than masked tokens.
            for (int i = 1; i < e.Source.Length; i++) Assert.False(e.Source[i] == Mask && e.Source[i - 1] == Mask, $"seed {seed}: two masks in a row");
            Assert.InRange(e.Source.Count(t => t == Mask), 1, 9 + 3);
            // Within a sentence the kept tokens keep their order (the permutation moves whole sentences).
            foreach (var s in Sentences)
            {
                var mine = kept.Where(s.Contains).ToList();
                Assert.Equal(mine.OrderBy(t => t), mine);
            }
        }
    }

    [Fact]
    public void Sentences_are_permuted_uniformly()
    {
        // Which sentence comes first, read from the first kept token: each of the three about a third of the time.
        var first = new int[3];
        for (int seed = 0; seed < 3000; seed++)
        {
            // Masking may hide the first sentence's tokens; it does so alike whichever sentence comes first, so the
            // sentence of the first kept token is still first a third of the time each.
            var three = new[] { new[] { 10, 11, 12 }, new[] { 20, 21, 22 }, new[] { 30, 31, 32 } };
            var e = BartPretraining.Corrupt(three, new Random(seed), Mask, 0, 2);
            var kept = e.Source.Where(t => t != Mask && t >= 10).ToList();
            first[kept[0] / 10 - 1]++;
        }
        Assert.All(first, n => Assert.InRange(n, 800, 1200));
    }

    [Fact]
    public void Poisson_draws_have_mean_and_variance_lambda()
    {
        var rng = new Random(1);
        var xs = Enumerable.Range(0, 40_000).Select(_ => (double)BartPretraining.Poisson(rng, 3.0)).ToList();
        double mean = xs.Average(), variance = xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1);
        Assert.InRange(mean, 2.95, 3.05);
        Assert.InRange(variance, 2.85, 3.15);
        // P(0) = e^-3 = 0.0498.
        Assert.InRange(xs.Count(x => x == 0) / (double)xs.Count, 0.045, 0.055);
    }

    [Fact]
    public void Examples_gather_whole_sentences_up_to_the_token_budget()
    {
        var bpe = BpeTrainer.Train(["One two three. Four five six! Seven eight nine? Ten."], vocabSize: 300);
        var chunks = BartPretraining.Chunks(["One two three. Four five six! Seven eight nine? Ten."], bpe, maxTokens: 2 + 20);
        // Each sentence alone is under 20 tokens; they are gathered while the sum stays within 20.
        Assert.All(chunks, c => Assert.InRange(c.Sum(s => s.Length), 4, 20));
        var all = chunks.SelectMany(c => c).ToList();
        Assert.Equal(4, all.Count);
        Assert.Equal(bpe.EncodeContent("One two three."), all[0]);
        Assert.Equal(bpe.EncodeContent(" Four five six!"), all[1]);
    }

    [Fact]
    public void Corruption_seeds_are_fnv_1a_of_the_integers_bytes_the_same_in_every_process()
    {
        // FNV-1a (32-bit) over the little-endian bytes of 1, 2, 3, top bit cleared; computed independently in Python.
        Assert.Equal(2034659765, BartPretraining.Mix(1, 2, 3));
        Assert.NotEqual(BartPretraining.Mix(1, 2, 3), BartPretraining.Mix(1, 3, 2));
    }

    [Fact]
    public void A_copying_drill_example_is_random_ordinary_tokens_with_the_target_equal_to_the_source()
    {
        var seen = new HashSet<int>();
        for (int seed = 0; seed < 50; seed++)
        {
            var e = BartPretraining.RandomCopy(30, new Random(seed), maskId: 99, bos: 0, eos: 2);
            Assert.Equal(e.Source, e.Target);
            Assert.Equal(32, e.Source.Length);
            Assert.Equal(0, e.Source[0]);
            Assert.Equal(2, e.Source[^1]);
            // Ordinary tokens only: past <s>, <pad>, </s>, <unk> and below <mask>.
            Assert.All(e.Source[1..^1], t => Assert.InRange(t, 4, 98));
            seen.UnionWith(e.Source[1..^1]);
        }
        Assert.Equal(95, seen.Count);      // 1,500 draws from 95 ids reach every one
        Assert.Equal(BartPretraining.RandomCopy(30, new Random(7), 99, 0, 2).Source, BartPretraining.RandomCopy(30, new Random(7), 99, 0, 2).Source);
    }

    [Fact]
    public void A_drill_longer_than_an_example_is_refused_naming_the_setting()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new BartPretrainOptions { MaxTokens = 16, CopyDrillLength = 15 }.Validate());
        Assert.Contains("CopyDrillLength", e.Message);
        Assert.Contains("MaxTokens 16", e.Message);
        new BartPretrainOptions { MaxTokens = 16, CopyDrillLength = 14 }.Validate();
    }
}
