using System.Text.Json.Nodes;
using CoeffTune.Methods.Adapter;
using CoeffTune.Methods.Baselines;
using CoeffTune.Methods.BitFit;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Fact;
using CoeffTune.Methods.Lora;
using CoeffTune.Methods.Snell;
using CoeffTune.Methods.Ssf;
using CoeffTune.Methods.Vpt;

namespace CoeffTune.Methods;

/// <summary>The methods a recipe can name. One line per method: its <see cref="MethodDefinition"/>.</summary>
public static class MethodRegistry
{
    public static IReadOnlyList<MethodDefinition> Definitions { get; } = new[]
    {
        CoeffConfig.Definition,
        LoraConfig.Definition,
        DoraConfig.Definition,
        SsfConfig.Definition,
        BitFitConfig.Definition,
        FactConfig.Definition,
        SnellConfig.Definition,
        AdapterConfig.Definition,
        VptConfig.Definition,
        LinearProbeConfig.Definition,
        FullConfig.Definition,
    };

    private static readonly Dictionary<string, MethodDefinition> byName = Definitions.ToDictionary(d => d.Name);

    public static IReadOnlyCollection<string> Names => byName.Keys;

    /// <summary>Names under which any method registers its own modules or parameters; never a target themselves.</summary>
    public static IReadOnlySet<string> ModuleNames { get; } = Definitions.SelectMany(d => d.ModuleNames).ToHashSet();

    public static MethodDefinition Get(string name) =>
        byName.TryGetValue(name, out var d) ? d
            : throw new ArgumentException($"unknown method '{name}' in recipe; known: {string.Join(", ", byName.Keys)}");

    public static IMethodConfig Create(string name, JsonObject? options = null) => Get(name).FromJson(options ?? new JsonObject());
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
        var definitions = names.Select(MethodRegistry.Get).ToList();
        CheckConflicts(recipe, definitions.Select(d => d.Name).ToList());
        return definitions.Select(d => d.FromJson(options?.GetValueOrDefault(d.Name) ?? new JsonObject())).ToList();
    }

    /// <summary>Fails when two of <paramref name="names"/> declare each other as conflicting.</summary>
    public static void CheckConflicts(string recipe, IReadOnlyList<string> names)
    {
        foreach (var a in names)
            foreach (var b in MethodRegistry.Get(a).ConflictsWith.Where(names.Contains))
                throw new ArgumentException($"recipe '{recipe}': {a} and {b} would wrap the same layers; pick one");
    }

    public static string Format(IEnumerable<IMethodConfig> configs) => string.Join("+", configs.Select(c => c.Method));
}
