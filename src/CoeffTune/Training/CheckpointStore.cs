using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.IO;

namespace CoeffTune.Training;

/// <summary>A checkpoint found complete: its folder, step and the settings of the run that wrote it.</summary>
public sealed record CheckpointEntry(string Folder, int Step, JsonObject Settings);

/// <summary>
/// Checkpoints as units. Each is a folder <c>step-00000123</c>: its files are written into a fresh temporary
/// folder, a <c>manifest.json</c> naming the step and every file's size and SHA-256 is written last, and the
/// folder is then renamed into place (<see cref="AtomicFile.WriteDirectory"/>), so a checkpoint folder is either whole or absent. Loading verifies the
/// manifest and every file against it and falls back to the previous complete checkpoint when the newest is
/// damaged. The last <see cref="Keep"/> checkpoints are kept.
/// </summary>
public sealed class CheckpointStore(string root)
{
    public const string ManifestName = "manifest.json";
    public const string FormatName = "coefftune-checkpoint";
    private const string Prefix = "step-";

    public string Root { get; } = root;
    public int Keep { get; init; } = 2;

    /// <summary>
    /// A fault-injection point: called after each stage of a write with its name (each file's name once it is
    /// written, then "manifest.json", "renamed" and "pruned"). An exception thrown from it stands for the
    /// process dying at that point, which lets tests kill a write at every boundary deterministically.
    /// </summary>
    public Action<string>? Boundary { get; init; }

    /// <summary>Writes a checkpoint of <paramref name="step"/>: each writer gets the path its file must be written to.</summary>
    public string Save(int step, IReadOnlyList<(string Name, Action<string> Write)> files, JsonObject settings)
    {
        var target = Path.Combine(Root, $"{Prefix}{step:D8}");
        // The folder is written as a unit; a resumed run writes its first checkpoint at a step it may already
        // have, and the new one replaces it. A failed write (a full disk, say) frees its space at once; after a
        // crash the next run's CleanLeftovers does.
        AtomicFile.WriteDirectory(target, tmp =>
        {
            var entries = new JsonObject();
            foreach (var (name, write) in files)
            {
                var path = Path.Combine(tmp, name);
                write(path);
                entries[name] = new JsonObject { ["size"] = new FileInfo(path).Length, ["sha256"] = Sha256(path) };
                Boundary?.Invoke(name);
            }
            var manifest = new JsonObject
            {
                ["format"] = FormatName, ["version"] = 1, ["step"] = step, ["settings"] = settings.DeepClone(), ["files"] = entries,
            };
            File.WriteAllText(Path.Combine(tmp, ManifestName), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Boundary?.Invoke(ManifestName);
        });
        Boundary?.Invoke("renamed");
        foreach (var old in Complete().Skip(Keep)) Directory.Delete(old.Folder, recursive: true);
        Boundary?.Invoke("pruned");
        return target;
    }

    /// <summary>Removes temporary folders that an interrupted write left behind (call while holding the run's lock).</summary>
    public int CleanLeftovers()
    {
        if (!Directory.Exists(Root)) return 0;
        int n = 0;
        foreach (var dir in Directory.GetDirectories(Root, AtomicFile.TempDirectoryPattern))
        {
            Directory.Delete(dir, recursive: true);
            n++;
        }
        return n;
    }

    /// <summary>True when the folder holds any checkpoint, complete or not.</summary>
    public bool Any() => Directory.Exists(Root) && (Directory.GetDirectories(Root, Prefix + "*").Length > 0 || File.Exists(Path.Combine(Root, "state.json")));

    /// <summary>
    /// The newest checkpoint that verifies; each one skipped is reported to <paramref name="log"/> with the reason.
    /// Throws, naming every reason, when checkpoints exist but none is complete.
    /// </summary>
    public CheckpointEntry Latest(TextWriter? log = null)
    {
        var problems = new List<string>();
        foreach (var (folder, step) in Candidates())
        {
            var problem = Verify(folder, step, out var settings);
            if (problem is null)
            {
                if (problems.Count > 0) log?.WriteLine($"resuming from the previous complete checkpoint, step {step}");
                return new CheckpointEntry(folder, step, settings!);
            }
            problems.Add($"{Path.GetFileName(folder)}: {problem}");
            log?.WriteLine($"checkpoint {Path.GetFileName(folder)} is not usable: {problem}");
        }
        if (File.Exists(Path.Combine(Root, "state.json")))
            problems.Add("state.json: a checkpoint of an older layout, which cannot be verified");
        throw new InvalidDataException(problems.Count == 0
            ? $"{Root}: no checkpoint to resume from"
            : $"{Root}: no complete checkpoint to resume from ({string.Join("; ", problems)}); start the run anew without resuming, or in another run folder");
    }

    private IEnumerable<(string Folder, int Step)> Candidates()
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (var dir in Directory.GetDirectories(Root, Prefix + "*")
                     .Select(d => (Folder: d, Ok: int.TryParse(Path.GetFileName(d)[Prefix.Length..], out int s), Step: s))
                     .Where(x => x.Ok).OrderByDescending(x => x.Step))
            yield return (dir.Folder, dir.Step);
    }

    private List<CheckpointEntry> Complete() =>
        Candidates().Select(c => (c, problem: Verify(c.Folder, c.Step, out var s), s))
            .Where(x => x.problem is null).Select(x => new CheckpointEntry(x.c.Folder, x.c.Step, x.s!)).ToList();

    /// <summary>Null when the folder's manifest is whole and names this step, and every file matches it; else what is wrong.</summary>
    private static string? Verify(string folder, int step, out JsonObject? settings)
    {
        settings = null;
        var manifestPath = Path.Combine(folder, ManifestName);
        if (!File.Exists(manifestPath)) return "no manifest.json (the write did not finish)";
        JsonObject manifest;
        try { manifest = JsonNode.Parse(File.ReadAllText(manifestPath)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { return $"manifest.json is not valid JSON ({e.Message})"; }
        if (manifest["format"]?.GetValueKind() != JsonValueKind.String || manifest["format"]!.GetValue<string>() != FormatName)
            return "manifest.json is not a checkpoint manifest";
        if (manifest["step"] is not JsonValue sv || !sv.TryGetValue<int>(out int s) || s != step)
            return $"manifest.json names step {manifest["step"]?.ToJsonString() ?? "none"}, the folder step {step}";
        if (manifest["files"] is not JsonObject files || manifest["settings"] is not JsonObject runSettings)
            return "manifest.json lacks its files or settings";
        foreach (var (name, entry) in files)
        {
            var path = Path.Combine(folder, name);
            if (!File.Exists(path)) return $"{name} is missing";
            long size = entry?["size"]?.GetValue<long>() ?? -1;
            if (new FileInfo(path).Length != size) return $"{name} has {new FileInfo(path).Length} bytes, the manifest says {size}";
            if (Sha256(path) != entry?["sha256"]?.GetValue<string>()) return $"{name} does not match its SHA-256 in the manifest";
        }
        settings = runSettings;
        return null;
    }

    public static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>
    /// The settings that differ between a checkpoint and this run, as "key: old → new" lines (keys in either).
    /// </summary>
    public static List<string> Differences(JsonObject saved, JsonObject current)
    {
        var diffs = new List<string>();
        foreach (var key in saved.Select(kv => kv.Key).Union(current.Select(kv => kv.Key)).Order(StringComparer.Ordinal))
        {
            var a = saved[key];
            var b = current[key];
            if (!JsonNode.DeepEquals(a, b)) diffs.Add($"{key} {a?.ToJsonString() ?? "unset"} -> {b?.ToJsonString() ?? "unset"}");
        }
        return diffs;
    }
}
