using System.Text.RegularExpressions;
using TorchSharp;

namespace CoeffTune.Methods;

/// <summary>
/// Picks modules by name. A pattern is an exact module path ("layers.0.attention.query"), a dotted
/// suffix ("query" matches "layers.3.attention.query"), or a regular expression prefixed with "re:"
/// that must match the whole path. A pattern that matches nothing is an error naming it and the
/// closest module names.
/// </summary>
public static class Targets
{
    /// <summary>True when <paramref name="path"/> lies inside a module some method registered (see <see cref="MethodDefinition.ModuleNames"/>).</summary>
    private static bool IsAdapterModule(string path) => path.Split('.').Any(MethodRegistry.ModuleNames.Contains);

    public static bool Matches(string pattern, string path)
    {
        if (pattern.StartsWith("re:", StringComparison.Ordinal))
            return Regex.IsMatch(path, "^(?:" + pattern[3..] + ")$");
        return path == pattern || path.EndsWith("." + pattern, StringComparison.Ordinal);
    }

    /// <summary>The modules of type <typeparamref name="T"/> matched by any pattern, outside the target's excluded modules.</summary>
    public static List<(string Path, T Module)> Select<T>(AttachTarget target, IEnumerable<string> patterns, string method)
        where T : torch.nn.Module
    {
        var all = target.Model.named_modules().Where(m => !IsAdapterModule(m.name) && !target.IsExcluded(m.name)).ToList();
        var selected = new List<(string, T)>();
        foreach (var pattern in patterns)
        {
            if (pattern.StartsWith("re:", StringComparison.Ordinal))
            {
                try { _ = new Regex(pattern[3..]); }
                catch (ArgumentException e) { throw new ArgumentException($"{method}: target pattern '{pattern}' is not a valid regular expression: {e.Message}"); }
            }
            var hits = all.Where(m => Matches(pattern, m.name)).ToList();
            if (hits.Count == 0)
                throw new ArgumentException($"{method}: target pattern '{pattern}' matches no module; closest names: {string.Join(", ", Closest(pattern, all.Select(m => m.name), 5))}");
            foreach (var (name, module) in hits)
            {
                if (module is not T typed)
                    throw new ArgumentException($"{method}: target '{name}' (matched by '{pattern}') is a {module.GetType().Name}, not a {typeof(T).Name}");
                if (!selected.Any(s => s.Item1 == name)) selected.Add((name, typed));
            }
        }
        return selected;
    }

    /// <summary>
    /// The width D of the model's token states: a classifier's own, else the width of its first attention layer outside
    /// the excluded modules. A model with neither is an error naming <paramref name="method"/>.
    /// </summary>
    public static int Width(AttachTarget target, string method)
    {
        if (target.Model is Models.TransformerClassifier classifier) return classifier.Width;
        var attention = target.Model.named_modules().Where(m => !target.IsExcluded(m.name)).Select(m => m.module)
            .OfType<Attention.MultiHeadAttention>().FirstOrDefault();
        return attention?.Dim ?? throw new ArgumentException($"{method}: the model has no attention layer to take the width of its token states from");
    }

    /// <summary>Every Linear of the model outside the excluded modules and the modules methods added.</summary>
    public static List<(string Path, TorchSharp.Modules.Linear Module)> Linears(AttachTarget target) =>
        target.Model.named_modules().Where(m => !IsAdapterModule(m.name) && !target.IsExcluded(m.name))
            .Where(m => m.module is TorchSharp.Modules.Linear).Select(m => (m.name, (TorchSharp.Modules.Linear)m.module)).ToList();

    /// <summary>Module names nearest to <paramref name="pattern"/> by edit distance.</summary>
    public static IEnumerable<string> Closest(string pattern, IEnumerable<string> names, int count)
    {
        var p = pattern.StartsWith("re:") ? pattern[3..] : pattern;
        return names.Select(n => (n, d: Math.Min(Distance(p, n), Distance(p, n.Split('.')[^1]) + 1)))
            .OrderBy(x => x.d).ThenBy(x => x.n.Length).Select(x => x.n).Distinct().Take(count);
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
