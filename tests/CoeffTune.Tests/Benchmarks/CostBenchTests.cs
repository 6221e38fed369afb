using CoeffTune.Benchmarks;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Lora;

namespace CoeffTune.Tests.Benchmarks;

public class CostBenchTests
{
    [Fact]
    public void The_recipes_keep_the_names_of_the_earlier_tables_and_their_baselines()
    {
        // The names the cost tables (docs/results/cost.md) were written with, and the rest of Table 1's methods.
        Assert.Equal(["linear", "coeff", "linear+explicit-maps", "lora", "coeff+lora", "coeff+lora (stored maps)", "coeff+lora (whole maps)", "ssf", "coeff+ssf",
            "fact", "coeff+fact", "snell", "coeff+snell", "adapter", "coeff+adapter", "vpt", "coeff+vpt",
            "full", "coeff+full", "coeff+full (stored maps)"], CostRecipe.All.Select(r => r.Label));
        Assert.Equal([null, "linear", null, null, "lora", "lora", "lora", null, "ssf", null, "fact", null, "snell", null, "adapter", null, "vpt", null, "full", "full"],
            CostRecipe.All.Select(r => r.Baseline?.Label));
    }

    [Fact]
    public void Ratios_compare_each_coeff_recipe_with_its_baseline_on_the_same_model()
    {
        var recipes = CostBenchSetup.Select(["lora", "coeff+lora", "coeff+lora (stored maps)"]);
        var rows = new List<CostRow>
        {
            new("m", "lora", 128, 100, 40, 2.0, 4.0, 1), new("m", "coeff+lora", 128, 110, 50, 2.5, 5.0, 1), new("m", "coeff+lora (stored maps)", 128, 105, 80, 2.5, 5.0, 1),
            new("n", "lora", 512, 10, 0, 1.0, 2.0, 1), new("n", "coeff+lora", 512, 30, 5, 1.5, 3.0, 1),
        };
        var ratios = CostBench.Ratios(rows, recipes).ToList();
        Assert.Equal(new CostRatio("m", "lora", 128, 1.1, 1.25, 10, 1.25), ratios[0]);
        Assert.Equal(new CostRatio("m", "lora (stored maps)", 128, 1.05, 2.0, 40, 1.25), ratios[1]);
        // No memory measured for the baseline: no memory ratio.
        Assert.Equal("n", ratios[2].Model);
        Assert.Equal(512, ratios[2].SeqLen);
        Assert.Equal(3.0, ratios[2].Time);
        Assert.True(double.IsNaN(ratios[2].Memory));
    }

    [Fact]
    public void A_selection_naming_an_unknown_recipe_or_lacking_a_baseline_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => CostBenchSetup.Select(["lora", "dora"]));
        Assert.Equal("recipes", e.ParamName);
        Assert.StartsWith("unknown recipe 'dora'; choose from 'linear', 'coeff', ", e.Message);
        e = Assert.Throws<ArgumentException>(() => new CostBenchSetup { Recipes = CostBenchSetup.Select(["coeff+lora"]) });
        Assert.StartsWith("'coeff+lora' is compared with 'lora', which is not in the list", e.Message);
        Assert.StartsWith("CostBenchSetup.Steps must be at least 1, got 0", Assert.Throws<ArgumentException>(() => new CostBenchSetup { Steps = 0 }).Message);
        Assert.Throws<ArgumentException>(() => new CostRecipe(MapHandling.Stored, new LoraConfig()));
        Assert.StartsWith("CostBenchSetup.SequenceLengths: 4096 must be between 2 and 2048 tokens",
            Assert.Throws<ArgumentException>(() => new CostBenchSetup { SequenceLengths = [128, 4096] }).Message);
        Assert.Throws<ArgumentException>(() => new CostRecipe(MapHandling.Explicit, new CoeffConfig()));
    }

    [Fact]
    public void Sequence_lengths_measure_the_minilm_shape_at_2048_tokens_per_batch()
    {
        var models = new CostBenchSetup { SequenceLengths = [128, 512, 1024] }.Models();
        Assert.Equal([128L, 512, 1024], models.Select(m => m.SequenceLength));
        Assert.Equal(["MiniLM shape, batch 16 x 128 tokens", "MiniLM shape, batch 4 x 512 tokens", "MiniLM shape, batch 2 x 1024 tokens"], models.Select(m => m.Name));
        using var batch = models[2].Input();
        Assert.Equal(new long[] { 2, 1024 }, batch.Inputs.shape);
        // 1,024 tokens need more than MiniLM's 512 positions: the shape gets them.
        using var net = models[2].Make();
        using var logits = net.forward(batch);
        Assert.Equal(new long[] { 2, 2 }, logits.shape);
    }
}
