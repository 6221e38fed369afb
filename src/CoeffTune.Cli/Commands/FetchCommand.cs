using System.CommandLine;
using CoeffTune.Assets;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune fetch NAME|all</c>: brings real models and datasets into the cache.</summary>
public static class FetchCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = "asset to fetch, or 'all'" };
        var force = new Option<bool>("--force") { Description = "fetch again even if present (replaces a damaged copy)" };
        var cmd = new Command("fetch", "Download a real model or dataset into the cache ($COEFFTUNE_CACHE, else $XDG_CACHE_HOME/coefftune or ~/.cache/coefftune), checked against its pinned SHA-256") { name, force };
        cmd.SetAction(p => Run(p.GetValue(name)!, p.GetValue(force)));
        return cmd;
    }

    private static int Run(string name, bool force)
    {
        var cache = AssetCache.Default;
        var assets = string.Equals(name, "all", StringComparison.OrdinalIgnoreCase) ? AssetCatalog.All : new[] { AssetCatalog.Find(name) };
        int failed = 0;
        foreach (var asset in assets)
        {
            if (force && Directory.Exists(cache.PathFor(asset.Name)))
            {
                Directory.Delete(cache.PathFor(asset.Name), recursive: true);
                File.Delete(cache.PathFor(asset.Name) + AssetIntegrity.StampSuffix);
            }
            if (asset.IsPresent(cache))
            {
                if (asset.Verify(cache) is { } problem)
                {
                    Console.Error.WriteLine($"error: {Cli.Damaged(asset.Name, problem)}");
                    failed++;
                }
                else Console.WriteLine($"{asset.Name}: already present in {cache.PathFor(asset.Name)}");
                continue;
            }
            try
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                var dir = asset.Fetch(cache, Console.Out);
                if (asset.Verify(cache) is { } problem) throw new InvalidDataException($"{asset.Name}: fetched, but {problem}");
                Console.WriteLine($"{asset.Name}: fetched into {dir} ({sw.Elapsed.TotalSeconds:F1} s)");
            }
            catch (AssetUnavailableException e) when (assets.Count > 1)
            {
                // With 'all', one unavailable asset does not stop the others; the exit code still says so.
                Console.Error.WriteLine($"error: {e.Message}");
                failed++;
            }
        }
        return failed == 0 ? 0 : 1;
    }
}
