using CoeffTune.Metrics;

namespace CoeffTune.Tests.Metrics;

/// <summary>sacreBLEU's corpus BLEU (13a tokenisation, exp smoothing), checked against counts worked out by hand.</summary>
public sealed class BleuTests
{
    [Theory]
    // Period and comma split off unless next to a digit; the apostrophe and a dash between letters stay.
    [InlineData("It's 3.5 - yes, x-y.", "It's 3.5 - yes , x-y .")]
    // Entities are unescaped first; quotes and & are symbols; a dash after a digit splits.
    [InlineData("&quot;a&quot; &amp; 5-3", "\" a \" & 5 - 3")]
    [InlineData("Hello, world!", "Hello , world !")]
    [InlineData("(x+y)/2=z; $10 @home", "( x + y ) / 2 = z ; $ 10 @ home")]
    [InlineData("1,000.5 and 3,", "1,000.5 and 3 ,")]
    [InlineData("  many\tspaces\n here <skipped>", "many spaces here")]
    public void Tokenize13a_splits_as_mteval_v13a(string line, string expected) => Assert.Equal(expected, Bleu.Tokenize13a(line));

    [Fact]
    public void A_worked_example_with_no_four_gram_match_uses_exp_smoothing()
    {
        // hyp: the cat sat on the mat (6 tokens)      ref: the cat is on the mat (6 tokens)
        // 1-grams: the x2, cat, on, mat match; sat does not                           -> 5 / 6
        // 2-grams: "the cat", "on the", "the mat" match; "cat sat", "sat on" do not    -> 3 / 5
        // 3-grams: only "on the mat"                                                   -> 1 / 4
        // 4-grams: none of 3 -> exp smoothing, the first order without a match: 100 / (2 * 3) = 16.67
        // equal lengths: BP = 1; BLEU = (83.33 * 60 * 25 * 16.67) ^ (1/4) = 37.99
        var s = Bleu.Corpus(new[] { "the cat sat on the mat" }, new[] { "the cat is on the mat" });
        Assert.Equal(new long[] { 5, 3, 1, 0 }, s.Correct);
        Assert.Equal(new long[] { 6, 5, 4, 3 }, s.Total);
        Assert.Equal(1.0, s.BrevityPenalty);
        Assert.Equal(100.0 / 6, s.Precisions[3], 10);
        Assert.Equal(Math.Pow(500.0 / 6 * 60 * 25 * (100.0 / 6), 0.25), s.Score, 10);
        Assert.Equal(37.99, s.Score, 2);
        Assert.StartsWith("BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000", s.ToString());
    }

    [Fact]
    public void A_short_hypothesis_pays_the_brevity_penalty_and_each_missing_order_halves_again()
    {
        // hyp: Hello , world ! (4 tokens after 13a)    ref: Hello , big world ! (5)
        // 1-grams 4/4; 2-grams "Hello ,", "world !" of 3 -> 2/3; 3-grams 0/2 -> 100 / (2 * 2) = 25; 4-grams 0/1 -> 100 / (4 * 1) = 25
        // BP = exp(1 - 5/4) = 0.7788; BLEU = 0.7788 * (100 * 66.67 * 25 * 25) ^ (1/4) = 35.19
        var s = Bleu.Corpus(new[] { "Hello, world!" }, new[] { "Hello, big world!" });
        Assert.Equal(new long[] { 4, 2, 0, 0 }, s.Correct);
        Assert.Equal(new long[] { 4, 3, 2, 1 }, s.Total);
        foreach (var (expected, actual) in new[] { 100, 200.0 / 3, 25, 25 }.Zip(s.Precisions)) Assert.Equal(expected, actual, 10);
        Assert.Equal(Math.Exp(-0.25), s.BrevityPenalty, 12);
        Assert.Equal(Math.Exp(-0.25) * Math.Pow(100 * 200.0 / 3 * 25 * 25, 0.25), s.Score, 10);
        Assert.Equal(35.19, s.Score, 2);
    }

    [Fact]
    public void Counts_add_over_the_corpus_and_clip_by_the_best_reference()
    {
        // Sentence 1: "the the the" against refs "the cat" / "the the dog": "the" clipped to 2 (the second ref);
        // lengths 3 vs 2 and 3: the closest is 3. Sentence 2: "a b c d" against itself: all match.
        // 1-grams (2 + 4) / (3 + 4); 2-grams ("the the" clipped to 1: 1 + 3) / (2 + 3); 3-grams (0 + 2) / (1 + 2); 4-grams (0 + 1) / (0 + 1)
        var s = Bleu.Corpus(new[] { "the the the", "a b c d" },
            new IReadOnlyList<string>[] { new[] { "the cat", "the the dog" }, new[] { "a b c d" } });
        Assert.Equal(new long[] { 6, 4, 2, 1 }, s.Correct);
        Assert.Equal(new long[] { 7, 5, 3, 1 }, s.Total);
        Assert.Equal((7L, 7L), (s.HypothesisLength, s.ReferenceLength));
        Assert.Equal(Math.Pow(600.0 / 7 * 80 * 200.0 / 3 * 100, 0.25), s.Score, 10);
    }

    [Fact]
    public void Identical_text_scores_100_and_an_empty_hypothesis_0()
    {
        Assert.Equal(100, Bleu.Corpus(new[] { "one two three four five" }, new[] { "one two three four five" }).Score, 10);
        Assert.Equal(0, Bleu.Corpus(new[] { "" }, new[] { "one two three four five" }).Score);
        // Shorter than four tokens in all: no 4-gram at all, so the score is 0 (sacreBLEU's corpus BLEU without effective order).
        Assert.Equal(0, Bleu.Corpus(new[] { "one two" }, new[] { "one two" }).Score, 6);
    }
}
