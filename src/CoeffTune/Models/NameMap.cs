using System.Text.RegularExpressions;

namespace CoeffTune.Models;

/// <summary>
/// Maps module and parameter paths between this library's model and another layout of the same model (Hugging
/// Face transformers, timm), both ways. Each pair names a module in both layouts, with "{i}" standing for a layer
/// index. A path maps through its longest prefix that some pair names, and the rest of the path is kept:
/// "layers.0.attention.query.lora_A.weight" becomes "bert.encoder.layer.0.attention.self.query.lora_A.weight".
/// </summary>
public sealed class NameMap
{
    private readonly (Regex Ours, string OursTemplate, Regex Theirs, string TheirsTemplate)[] pairs;

    /// <summary>The layout's name, e.g. "huggingface" or "timm".</summary>
    public string Layout { get; }

    public NameMap(string layout, params (string Ours, string Theirs)[] pairs)
    {
        Layout = layout;
        this.pairs = pairs.Select(p => (Pattern(p.Ours), p.Ours, Pattern(p.Theirs), p.Theirs)).ToArray();
    }

    private static Regex Pattern(string template) =>
        new("^" + Regex.Escape(template).Replace(@"\{i}", @"(?<i>\d+)") + "$", RegexOptions.CultureInvariant);

    /// <summary>The path in the other layout, or null when no prefix of <paramref name="path"/> is named by a pair.</summary>
    public string? ToTheirs(string path) => Map(path, toTheirs: true);

    /// <summary>
    /// The path in this library's model, or null when no prefix of <paramref name="path"/> is named by a pair, or when
    /// more than <paramref name="maxRest"/> segments follow the longest named prefix (1 for a checkpoint's tensors:
    /// a module and its parameter's name, so a stray tensor keeps the name it has in the file).
    /// </summary>
    public string? ToOurs(string path, int maxRest = int.MaxValue) => Map(path, toTheirs: false, maxRest);

    private string? Map(string path, bool toTheirs, int maxRest = int.MaxValue)
    {
        var parts = path.Split('.');
        for (int k = parts.Length; k >= 1 && parts.Length - k <= maxRest; k--)
        {
            var prefix = string.Join('.', parts, 0, k);
            foreach (var p in pairs)
            {
                var m = (toTheirs ? p.Ours : p.Theirs).Match(prefix);
                if (!m.Success) continue;
                var mapped = (toTheirs ? p.TheirsTemplate : p.OursTemplate).Replace("{i}", m.Groups["i"].Value);
                return k == parts.Length ? mapped : mapped + "." + string.Join('.', parts, k, parts.Length - k);
            }
        }
        return null;
    }
}
