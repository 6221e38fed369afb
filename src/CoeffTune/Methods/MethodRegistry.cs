using System.Text.Json.Nodes;
using CoeffTune.Methods.Baselines;
using CoeffTune.Methods.BitFit;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using CoeffTune.Methods.Ssf;

namespace CoeffTune.Methods;

/// <summary>The methods a recipe can name, each read from its JSON options. One line per method.</summary>
public static class MethodRegistry
{
    private static readonly Dictionary<string, Func<JsonObject, IMethodConfig>> methods = new()
    {
        ["coeff"] = CoeffConfig.FromJson,
        ["lora"] = o => LoraConfig.FromJson(o),
        ["dora"] = DoraConfig.FromJson,
        ["ssf"] = SsfConfig.FromJson,
        ["bitfit"] = BitFitConfig.FromJson,
        ["linear"] = LinearProbeConfig.FromJson,
        ["full"] = FullConfig.FromJson,
    };

    public static IReadOnlyCollection<string> Names => methods.Keys;

    public static IMethodConfig Create(string name, JsonObject? options = null) =>
        methods.TryGetValue(name, out var make) ? make(options ?? new JsonObject())
            : throw new ArgumentException($"unknown method '{name}' in recipe; known: {string.Join(", ", methods.Keys)}");
}

/// <summary>A recipe such as "coeff+lora": methods joined with '+'.</summary>
public static class Recipe
{
    /// <summary>Parses a recipe; <paramref name="options"/> maps a method name to its JSON options.</summary>
    public static IReadOnlyList<IMethodConfig> Parse(string recipe, IReadOnlyDictionary<string, JsonObject>? options = null)
    {
        if (string.IsNullOrWhiteSpace(recipe)) throw new ArgumentException("empty recipe; e.g. coeff, lora, coeff+lora");
        var names = recipe.Split('+', StringSplitOptions.TrimEntries);
        if (names.Any(string.IsNullOrEmpty)) throw new ArgumentException($"recipe '{recipe}' has an empty method name");
        var dup = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"recipe '{recipe}' names '{dup.Key}' twice");
        if (names.Contains("lora") && names.Contains("dora"))
            throw new ArgumentException($"recipe '{recipe}': lora and dora would wrap the same layers; pick one");
        return names.Select(n => MethodRegistry.Create(n, options?.GetValueOrDefault(n))).ToList();
    }

    public static string Format(IEnumerable<IMethodConfig> configs) => string.Join("+", configs.Select(c => c.Method));
}
