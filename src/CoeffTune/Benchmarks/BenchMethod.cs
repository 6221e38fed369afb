using System.Text.Json.Nodes;
using CoeffTune.Methods;

namespace CoeffTune.Benchmarks;

/// <summary>
/// One method of a comparison: a row label and the methods it trains, as typed configs. The label names the row
/// in the tables and the folder of its runs (runs/&lt;task&gt;/&lt;label&gt;/seed&lt;N&gt;), so it is checked to be a
/// usable folder name; the configs are checked to form a valid recipe.
/// </summary>
public sealed record BenchMethod
{
    public string Label { get; }
    public IReadOnlyList<IMethodConfig> Configs { get; }

    /// <summary>A row labelled by its recipe, e.g. "coeff+lora".</summary>
    public BenchMethod(params IMethodConfig[] configs) : this(null, configs) { }

    public BenchMethod(string? label, params IMethodConfig[] configs)
    {
        if (configs.Length == 0) throw new ArgumentException($"bench method '{label}' has no method", nameof(configs));
        Configs = configs.ToArray();
        // Parsing the recipe back checks what a recipe string must satisfy (no method twice, not lora with dora), then
        // that every config reads back from its own options, which is how a run receives it.
        _ = CoeffTune.Methods.Recipe.Parse(Recipe);
        _ = CoeffTune.Methods.Recipe.Parse(Recipe, Options);
        label ??= Recipe;
        if (string.IsNullOrWhiteSpace(label) || label is "." or ".." || label.IndexOfAny(['/', '\\', '\0']) >= 0 || label != label.Trim())
            throw new ArgumentException($"bench method label '{label}' cannot name a run folder", nameof(label));
        Label = label;
    }

    /// <summary>The recipe string, e.g. "coeff+lora".</summary>
    public string Recipe => CoeffTune.Methods.Recipe.Format(Configs);

    /// <summary>Every method's options in full, keyed by method name: what a fine-tuning run reads the recipe's settings from.</summary>
    public IReadOnlyDictionary<string, JsonObject> Options => Configs.ToDictionary(c => c.Method, c => c.ToJson());

    /// <summary>
    /// What tells this row apart, for the report: per method, the options that differ from that method's defaults
    /// or between the rows of <paramref name="rows"/> with the same recipe; null when there are none.
    /// </summary>
    public Dictionary<string, JsonObject>? Distinguishing(IReadOnlyList<BenchMethod> rows)
    {
        var sameRecipe = rows.Where(r => r.Recipe == Recipe).ToList();
        Dictionary<string, JsonObject>? shown = null;
        foreach (var config in Configs)
        {
            var mine = config.ToJson();
            var defaults = MethodRegistry.Create(config.Method).ToJson();
            var others = sameRecipe.Select(r => r.Configs.Single(c => c.Method == config.Method).ToJson()).ToList();
            var keys = new JsonObject();
            foreach (var (key, value) in mine)
                if (!JsonNode.DeepEquals(value, defaults[key]) || others.Any(o => !JsonNode.DeepEquals(o[key], value)))
                    keys[key] = value?.DeepClone();
            if (keys.Count > 0) (shown ??= new())[config.Method] = keys;
        }
        return shown;
    }
}
