from source_jmap.run import run

if __name__ == "__main__":
    run()
