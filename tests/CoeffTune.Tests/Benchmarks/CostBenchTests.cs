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
        Assert.Equal(["linear", "coeff", "linear+explicit-maps", "lora", "coeff+lora", "coeff+lora (stored maps)", "ssf", "coeff+ssf",
            "fact", "coeff+fact", "snell", "coeff+snell", "adapter", "coeff+adapter", "vpt", "coeff+vpt",
            "full", "coeff+full", "coeff+full (stored maps)"], CostRecipe.All.Select(r => r.Label));
        Assert.Equal([null, "linear", null, null, "lora", "lora", null, "ssf", null, "fact", null, "snell", null, "adapter", null, "vpt", null, "full", "full"],
            CostRecipe.All.Select(r => r.Baseline?.Label));
    }

    [Fact]
    public void Ratios_compare_each_coeff_recipe_with_its_baseline_on_the_same_model()
    {
        var recipes = CostBenchSetup.Select(["lora", "coeff+lora", "coeff+lora (stored maps)"]);
        var rows = new List<CostRow>
        {
            new("m", "lora", 100, 40, 2.0, 1), new("m", "coeff+lora", 110, 50, 2.5, 1), new("m", "coeff+lora (stored maps)", 105, 80, 2.5, 1),
            new("n", "lora", 10, 0, 1.0, 1), new("n", "coeff+lora", 30, 5, 1.5, 1),
        };
        var ratios = CostBench.Ratios(rows, recipes).ToList();
        Assert.Equal(new CostRatio("m", "lora", 1.1, 1.25, 10, 1.25), ratios[0]);
        Assert.Equal(new CostRatio("m", "lora (stored maps)", 1.05, 2.0, 40, 1.25), ratios[1]);
        // No memory measured for the baseline: no memory ratio.
        Assert.Equal("n", ratios[2].Model);
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
        Assert.Throws<ArgumentException>(() => new CostRecipe(MapHandling.Explicit, new CoeffConfig()));
    }
}
