using CoeffTune.Benchmarks;
using CoeffTune.Diffusion;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Benchmarks;

/// <summary>The concept bench's fixed setup and its metrics against values worked by hand.</summary>
public sealed class ConceptBenchTests
{
    [Fact]
    public void Twenty_five_distinct_prompts_cover_every_attribute()
    {
        var prompts = ConceptBenchSetup.Prompts("sks", "photo");
        Assert.Equal(25, prompts.Count);
        Assert.Equal(25, prompts.Select(p => p.Text).Distinct().Count());
        Assert.All(prompts, p => Assert.Contains("sks", p.Text));
        Assert.Equal("a photo of sks", prompts[0].Text);
        Assert.Contains(new ConceptPrompt("a rotated drawing of sks", ImageAttribute.Rotated), prompts);
        Assert.Contains(new ConceptPrompt("an inverted image of sks", ImageAttribute.Inverted), ConceptBenchSetup.Prompts("sks", "image"));
        // Six of each attribute, and the bare token counts as plain.
        foreach (var a in new[] { ImageAttribute.Rotated, ImageAttribute.Inverted, ImageAttribute.Small })
            Assert.Equal(6, prompts.Count(p => p.Attribute == a));
        Assert.Equal(7, prompts.Count(p => p.Attribute == ImageAttribute.Plain));
    }

    [Fact]
    public void The_setup_is_the_papers_and_ten_concepts_of_held_out_classes()
    {
        var s = ConceptBenchSetup.Create(quick: false);
        Assert.Equal(new[] { "lora", "coeff+lora", "dora", "coeff+dora" }, s.Methods.Select(m => m.Label));
        Assert.Equal((200, 3e-4, 4, 25, 3), (s.Training.Steps, s.Training.LearningRate, s.ImagesPerPrompt, s.PromptCount, s.Seeds));
        Assert.Equal(10, ConceptBenchSetup.ConceptClasses.Count);
        foreach (var (task, label, _, _) in ConceptBenchSetup.ConceptClasses)
            Assert.Contains(label, task == "mnist" ? CaptionedCorpus.HeldOutDigits : CaptionedCorpus.HeldOutFashion);
        Assert.Contains("coeff+dora", Assert.Throws<ArgumentException>(() => s.Select(["coeff+ssf"], null)).Message);
        Assert.Equal(2, s.Select(["lora", "dora"], 1).Methods.Count);
    }

    [Fact]
    public void Another_budget_gets_its_own_name_and_the_papers_keeps_concept()
    {
        var s = ConceptBenchSetup.Create(quick: false);
        Assert.Same(s, s.WithBudget(null, null));
        Assert.Equal("concept", s.WithBudget(200, 3e-4).Name);
        var other = s.WithBudget(600, 1e-3);
        Assert.Equal(("concept-600-0.001", 600, 1e-3), (other.Name, other.Training.Steps, other.Training.LearningRate));
        Assert.Equal("concept-400-0.0003", s.WithBudget(400, null).Name);
        Assert.Equal(s.Methods, other.Methods);
        Assert.Equal("Steps", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithBudget(0, null)).ParamName);
        Assert.Equal("LearningRate", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithBudget(null, -1)).ParamName);
    }

    [Fact]
    public void Fidelity_is_the_mean_cosine_over_every_pair()
    {
        // Generated (1,0) and (1,1); references (1,0) and (0,2): cosines 1, 0, 1/sqrt2, 1/sqrt2; mean (1 + sqrt2) / 4.
        using var g = tensor(new float[] { 1, 0, 1, 1 }, new long[] { 2, 2 });
        using var r = tensor(new float[] { 1, 0, 0, 2 }, new long[] { 2, 2 });
        Assert.Equal((1 + Math.Sqrt(2)) / 4, ConceptBench.Fidelity(g, r), 6);
    }

    [Fact]
    public void Diversity_averages_one_minus_cosine_within_each_prompts_images()
    {
        // Group 1: (1,0), (0,1), (1,1): pairwise 1 - cos = 1, 1 - 1/sqrt2, 1 - 1/sqrt2. Group 2: three equal rows: 0.
        using var f = tensor(new float[] { 1, 0, 0, 1, 1, 1, 2, 3, 2, 3, 4, 6 }, new long[] { 6, 2 });
        double group1 = (1 + 2 * (1 - 1 / Math.Sqrt(2))) / 3;
        Assert.Equal(group1 / 2, ConceptBench.Diversity(f, 3), 6);
        Assert.Throws<ArgumentException>(() => ConceptBench.Diversity(f, 4));
        Assert.True(double.IsNaN(ConceptBench.Diversity(f, 1)));
    }

    [Fact]
    public void The_summary_spread_is_over_the_per_seed_means()
    {
        static ConceptRunResult Run(string concept, int seed, double fidelity) =>
            new(concept, "lora", seed, new ConceptScores(fidelity, 0.5, 0.1, 1), 10, 1, 1, 0.1);
        // Seed 0: concepts 0.2 and 0.4 (mean 0.3); seed 1: 0.6 and 0.8 (mean 0.7). Mean 0.5; std of (0.3, 0.7) = sqrt(0.08).
        var s = ConceptBench.Summarise("lora", [Run("a", 0, 0.2), Run("b", 0, 0.4), Run("a", 1, 0.6), Run("b", 1, 0.8)]);
        Assert.Equal(0.5, s.Mean.Fidelity, 12);
        Assert.Equal(Math.Sqrt(0.08), s.SeedStd.Fidelity, 12);
        Assert.Equal(0, s.SeedStd.Alignment, 12);
        Assert.Equal(4, s.Runs);
    }

    [Fact]
    public void Methods_share_their_sampling_noise_and_concepts_do_not()
    {
        Assert.NotEqual(ConceptBench.SamplingSeed(0, 0), ConceptBench.SamplingSeed(1, 0));
        Assert.NotEqual(ConceptBench.SamplingSeed(0, 0), ConceptBench.SamplingSeed(0, 1));
        var all = Enumerable.Range(0, 10).SelectMany(c => Enumerable.Range(0, 3).Select(s => ConceptBench.SamplingSeed(c, s))).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
    }
}
