using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Checkpoints;

/// <summary>What a checkpoint load did, by tensor name (the model's names).</summary>
public sealed record LoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<string> Ignored)
{
    public override string ToString() =>
        $"{Source}: {Loaded.Count} tensors loaded, {Missing.Count} missing{List(Missing)}, {Unexpected.Count} unexpected{List(Unexpected)}, {Ignored.Count} ignored{List(Ignored)}";

    internal static string List(IReadOnlyList<string> names, int max = 8) =>
        names.Count == 0 ? "" : " (" + string.Join(", ", names.Take(max)) + (names.Count > max ? $", ... {names.Count - max} more" : "") + ")";
}

/// <summary>Copies a renamed state dict into a module, checking names and shapes.</summary>
public static class StateDictLoader
{
    /// <summary>
    /// Copies every tensor of <paramref name="source"/> (already in the model's names) into
    /// <paramref name="model"/>. A shape mismatch always throws. With <paramref name="strict"/>, a model
    /// tensor the checkpoint lacks, or a checkpoint tensor the model does not have, throws too;
    /// tensors under <paramref name="freshPrefixes"/> (a new classification head) may be missing.
    /// </summary>
    public static LoadReport Load(nn.Module model, IReadOnlyDictionary<string, Tensor> source, string sourceName,
        bool strict = true, IEnumerable<string>? freshPrefixes = null, IEnumerable<string>? ignored = null)
    {
        var fresh = (freshPrefixes ?? Array.Empty<string>()).ToArray();
        var target = model.state_dict();
        var missing = target.Keys.Where(k => !source.ContainsKey(k)).ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (strict)
        {
            var needed = missing.Where(k => !fresh.Any(p => k.StartsWith(p + ".", StringComparison.Ordinal))).ToList();
            if (needed.Count > 0)
                throw new ArgumentException($"checkpoint {sourceName} lacks {needed.Count} tensor(s) the model needs: {string.Join(", ", needed.Take(12))}{(needed.Count > 12 ? ", ..." : "")}");
            if (unexpected.Count > 0)
                throw new ArgumentException($"checkpoint {sourceName} has {unexpected.Count} tensor(s) the model does not know: {string.Join(", ", unexpected.Take(12))}{(unexpected.Count > 12 ? ", ..." : "")}");
        }
        // Check every shape before copying anything, so a failed load leaves the model as it was.
        foreach (var (name, dest) in target)
            if (source.TryGetValue(name, out var src) && !src.shape.SequenceEqual(dest.shape))
                throw new ArgumentException($"tensor '{name}' in checkpoint {sourceName} has shape [{string.Join(", ", src.shape)}], the model expects [{string.Join(", ", dest.shape)}]");
        var loaded = new List<string>();
        using (no_grad())
        {
            foreach (var (name, dest) in target)
            {
                if (!source.TryGetValue(name, out var src)) continue;
                dest.copy_(src.to(dest.dtype, dest.device));
                loaded.Add(name);
            }
        }
        return new LoadReport(sourceName, loaded, missing, unexpected, (ignored ?? Array.Empty<string>()).ToList());
    }
}
